# Cross build for aarch64 Linux with Debian's g++-aarch64-linux-gnu; the target's libraries come
# from Debian multiarch (arm64 packages under /usr/lib/aarch64-linux-gnu, installed by
# scripts/setup_aarch64.sh). Test binaries run under qemu-user: CMAKE_CROSSCOMPILING_EMULATOR is
# what gtest_discover_tests and ctest prefix every target executable with.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Multiarch: no separate sysroot. find_library/find_package look in the lib/aarch64-linux-gnu
# directories of the normal prefixes; the host's x86-64 libraries are never picked because their
# directory names another architecture.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# pkg-config (PCRE2, cpp-httplib) reads the target's .pc files only; /usr/share/pkgconfig holds
# the architecture-independent ones.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
# The binaries run against the host's multiarch arm64 runtime (libc6:arm64 puts the loader at
# /lib/ld-linux-aarch64.so.1, libraries under /usr/lib/aarch64-linux-gnu), so qemu needs no -L.
# `-L /usr/aarch64-linux-gnu` (the cross toolchain's own libc) was tried: under qemu 7.2 any
# program that starts a thread hung in that mix of loaders, and the thread pool starts threads.
find_program(DSINFER_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64 REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR "${DSINFER_QEMU_AARCH64}")
