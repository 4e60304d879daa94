// Latency samples, percentiles and process accounting (CPU, RSS) for the load generator.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bench {

std::int64_t now_ns();  // CLOCK_MONOTONIC, the clock in every message body

// Exact percentiles over recorded samples (microseconds). Bench runs are bounded, so keeping
// every sample (4 bytes each) is cheaper and more honest than a histogram.
class Latency {
public:
    void add_ns(std::int64_t ns) {
        samples_.push_back(static_cast<std::uint32_t>(ns < 0 ? 0 : ns / 1000));
    }
    void merge(const Latency& o) {
        samples_.insert(samples_.end(), o.samples_.begin(), o.samples_.end());
    }
    std::size_t count() const { return samples_.size(); }
    // q in [0,1]; milliseconds; 0 when empty.
    double quantile_ms(double q);
    double mean_ms() const;
    void reserve(std::size_t n) { samples_.reserve(n); }

private:
    std::vector<std::uint32_t> samples_;
    bool sorted_ = false;
};

// user+system CPU seconds of this process (all threads), via getrusage.
double self_cpu_seconds();
// utime+stime seconds of a process (all its threads) from /proc/<pid>/stat; -1 if unreadable.
double proc_cpu_seconds(int pid);
// Seconds the process's threads spent runnable but waiting for a CPU (/proc/PID/task/*/schedstat):
// high values mean other load on the machine is distorting the measurement. pid 0 = self.
double proc_runqueue_wait_seconds(int pid);
// Busy CPU seconds of the whole machine (all cores, /proc/stat), to spot other load.
double machine_busy_seconds();
// VmRSS of a process in KiB from /proc/<pid>/status; -1 if unreadable. pid 0 = self.
long proc_rss_kb(int pid);

}  // namespace bench
