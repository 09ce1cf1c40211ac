# cmake/aarch64-linux-gnu.cmake: cross-compiles edgeinfer for 64-bit ARM Linux (aarch64) on a Debian x86-64 host
# with Debian's gcc-aarch64-linux-gnu and the Multi-Arch arm64 -dev packages (scripts/cross-arm64 installs them
# and shows the whole flow). Test programs run under qemu-user: ctest prefixes add_test(COMMAND <target>) with
# CMAKE_CROSSCOMPILING_EMULATOR, and tests/CMakeLists.txt hands the same command to its shell scripts as EI_RUN.
# The emulated CPU is chosen per run with the QEMU_CPU environment variable (qemu-user reads it), e.g.
#   QEMU_CPU=cortex-a76 ctest -L portable     (Raspberry Pi 5 core: NEON + dotprod)
#   QEMU_CPU=cortex-a53 ctest -L portable     (NEON only)
# qemu's default CPU ("max") is used when QEMU_CPU is unset.
#
# usage: cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# Where arm64 -dev packages that cannot be co-installed with their amd64 twin (not "Multi-Arch: same", e.g.
# libhttp-parser-dev) are unpacked with apt-get download + dpkg -x by scripts/cross-arm64.
if(NOT DEFINED EI_ARM64_EXTRA_ROOT)
  if(DEFINED ENV{EI_ARM64_EXTRA_ROOT})
    set(EI_ARM64_EXTRA_ROOT "$ENV{EI_ARM64_EXTRA_ROOT}")
  elseif(DEFINED ENV{EI_CACHE})
    set(EI_ARM64_EXTRA_ROOT "$ENV{EI_CACHE}/arm64-sysroot")
  elseif(DEFINED ENV{XDG_CACHE_HOME})
    set(EI_ARM64_EXTRA_ROOT "$ENV{XDG_CACHE_HOME}/edgeinfer/arm64-sysroot")
  else()
    set(EI_ARM64_EXTRA_ROOT "$ENV{HOME}/.cache/edgeinfer/arm64-sysroot")
  endif()
endif()
set(EI_ARM64_EXTRA_ROOT "${EI_ARM64_EXTRA_ROOT}" CACHE PATH "Extra root of unpacked arm64 -dev packages")
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES EI_ARM64_EXTRA_ROOT)

# Libraries and headers: the Multi-Arch paths of the host (/usr/lib/aarch64-linux-gnu, /usr/include and
# /usr/include/aarch64-linux-gnu, which Debian's cross gcc searches itself) and the extra root. Programs
# (python3, node, pkg-config) are the host's.
set(CMAKE_FIND_ROOT_PATH / "${EI_ARM64_EXTRA_ROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config: pkgconf's cross wrapper (package pkgconf:arm64) reads only the arm64 .pc files.
find_program(EI_ARM64_PKG_CONFIG aarch64-linux-gnu-pkg-config)
if(EI_ARM64_PKG_CONFIG)
  set(PKG_CONFIG_EXECUTABLE "${EI_ARM64_PKG_CONFIG}" CACHE FILEPATH "pkg-config for aarch64")
else()
  set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
endif()

# Test programs run under qemu-user. The binaries link against libc6-dev:arm64 and run with the loader and
# libraries of the Multi-Arch root (libc6:arm64, a dependency of every arm64 library), hence -L /. Not
# -L /usr/aarch64-linux-gnu: the loader there (libc6-arm64-cross) would take libc.so.6 from libc6:arm64 through
# /etc/ld.so.cache, mixing two glibc builds.
find_program(EI_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(NOT EI_QEMU_AARCH64)
  set(EI_QEMU_AARCH64 qemu-aarch64)
endif()
set(CMAKE_CROSSCOMPILING_EMULATOR "${EI_QEMU_AARCH64};-L;/" CACHE STRING "Runs aarch64 test programs")
