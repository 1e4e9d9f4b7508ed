# Cross build for aarch64 (make check-arm, docs/DATAPATH.md "ARM"): Debian's
# gcc-aarch64-linux-gnu, the arm64 -dev packages installed through multiarch
# (/usr/lib/aarch64-linux-gnu; scripts/deps.sh), and the tests run under qemu-user.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# Host programs (pkg-config, sh) from the host; libraries and headers of the target only.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# pkg-config must read the arm64 .pc files, never the host's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
# ctest runs every test binary through qemu-user, with the arm64 loader and C library of
# multiarch (libc6:arm64, /lib/ld-linux-aarch64.so.1). Not `-L /usr/aarch64-linux-gnu`: that
# loader is the cross toolchain's, of another glibc build than the multiarch libc.so.6 it then
# loads, and the pair hangs in pthread_create.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
