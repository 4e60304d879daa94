// Percentiles and /proc accounting.
#include "stats.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

namespace bench {

std::int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

double Latency::quantile_ms(double q) {
    if (samples_.empty()) {
        return 0;
    }
    if (!sorted_) {
        std::sort(samples_.begin(), samples_.end());
        sorted_ = true;
    }
    auto idx = static_cast<std::size_t>(q * static_cast<double>(samples_.size() - 1) + 0.5);
    return samples_[std::min(idx, samples_.size() - 1)] / 1000.0;
}

double Latency::mean_ms() const {
    if (samples_.empty()) {
        return 0;
    }
    double sum = 0;
    for (auto s : samples_) {
        sum += s;
    }
    return sum / static_cast<double>(samples_.size()) / 1000.0;
}

double self_cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    auto tv = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
    return tv(ru.ru_utime) + tv(ru.ru_stime);
}

double proc_cpu_seconds(int pid) {
    if (pid <= 0) {
        return -1;
    }
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    auto rp = all.rfind(')');
    if (rp == std::string::npos) {
        return -1;
    }
    std::istringstream fields(all.substr(rp + 2));
    std::string f;
    double utime = 0, stime = 0;
    // After ')': state(3) ppid(4) ... utime is field 14, stime 15 (1-based overall).
    for (int i = 3; i <= 15 && fields >> f; ++i) {
        if (i == 14) {
            utime = std::stod(f);
        } else if (i == 15) {
            stime = std::stod(f);
        }
    }
    return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double proc_runqueue_wait_seconds(int pid) {
    std::string dir = pid == 0 ? std::string("/proc/self/task")
                               : "/proc/" + std::to_string(pid) + "/task";
    std::error_code ec;
    double total = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        std::ifstream in(e.path() / "schedstat");
        double run = 0, wait = 0;
        if (in >> run >> wait) {
            total += wait / 1e9;
        }
    }
    return total;
}

double machine_busy_seconds() {
    std::ifstream in("/proc/stat");
    std::string cpu;
    // cpu user nice system idle iowait irq softirq steal
    double v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    in >> cpu;
    for (auto& x : v) {
        in >> x;
    }
    double busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return busy / static_cast<double>(sysconf(_SC_CLK_TCK));
}

long proc_rss_kb(int pid) {
    std::ifstream in(pid == 0 ? std::string("/proc/self/status")
                              : "/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stol(line.substr(6));
        }
    }
    return -1;
}

}  // namespace bench
