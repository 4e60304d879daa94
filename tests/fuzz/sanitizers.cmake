# Sanitizer flags for -DHAVEN_SANITIZE=ON and -DHAVEN_FUZZ=ON (included by the top CMakeLists.txt
# before any target, so every library and executable gets them). See tests/fuzz/README.md.
if(HAVEN_FUZZ AND NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "HAVEN_FUZZ needs clang (libFuzzer): -DCMAKE_CXX_COMPILER=clang++")
endif()
if(HAVEN_SANITIZE OR HAVEN_FUZZ)
  # No recovery: the first UBSan report aborts like an ASan one, so ctest and libFuzzer see it.
  set(HAVEN_SANITIZER_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all
                            -fno-omit-frame-pointer)
  add_compile_options(${HAVEN_SANITIZER_FLAGS})
  add_link_options(-fsanitize=address,undefined)
endif()
if(HAVEN_FUZZ)
  # Coverage instrumentation for every library; only the harnesses link libFuzzer's main.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
