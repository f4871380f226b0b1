#!/usr/bin/env bash
# Builds the release binary the container image ships, with the one cargo command CI runs too
# (.ci/run), and checks what it links.
#
# librdkafka is built from source (bundled). OpenSSL and zlib are linked statically
# (OPENSSL_STATIC for openssl-sys, LIBZ_SYS_STATIC for libz-sys), so the binary needs nothing
# but glibc and libgcc at run time: a distroless "cc" image, with no shell and no package
# manager, is enough. Building needs gcc, g++, make, perl, pkg-config and the static libraries
# of libssl-dev and zlib1g-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
# OPENSSL_STATIC alone is not enough: openssl-sys would find OpenSSL through pkg-config, which
# never links a library of a system directory statically. Naming the directories skips
# pkg-config.
multiarch="$(gcc -print-multiarch)"
export OPENSSL_STATIC=1 OPENSSL_LIB_DIR="/usr/lib/$multiarch" OPENSSL_INCLUDE_DIR=/usr/include
export LIBZ_SYS_STATIC=1
cargo build --release --locked --bin tributary
binary="${CARGO_TARGET_DIR:-target}/release/tributary"

# Every shared library the binary loads must be one of glibc's or libgcc's.
allowed='^(linux-vdso\.so|libc\.so|libm\.so|libgcc_s\.so|libpthread\.so|libdl\.so|librt\.so|ld-linux[-a-z0-9_]*\.so)'
unexpected="$(ldd "$binary" | awk '{print $1}' | sed 's|.*/||' | grep -Ev "$allowed" || true)"
if [ -n "$unexpected" ]; then
  echo "error: $binary links libraries the runtime image lacks:" >&2
  echo "$unexpected" >&2
  exit 1
fi
"$binary" --version
echo "$binary: $(du -h "$binary" | cut -f1), links only glibc and libgcc"
