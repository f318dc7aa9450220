#!/bin/sh
# Builds the libFuzzer targets out of tree: a snapshot of Sources/SwinetdCore and Sources/CSwinetd
# (so concurrent edits cannot change a build half-way), swift-log from the package checkout, and
# Fuzz/FuzzEntry.swift, compiled as ONE Swift module with -sanitize=fuzzer,address, linked with the
# dependencies of the package's debug build. Nothing is added to Package.swift and nothing in
# Sources is changed.
#
# usage: Fuzz/build.sh [TARGET...]     TARGET: inetd xinetd hosts proxy tcpmux (default: all)
# output: $OUT/fuzz-TARGET (OUT defaults to .build-fuzz in the repository)
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/.build-fuzz}
TARGETS=${*:-inetd xinetd hosts proxy tcpmux}

mkdir -p "$OUT/src" "$OUT/mods" "$OUT/cmod" "$OUT/obj"
rm -rf "$OUT/src/SwinetdCore" "$OUT/src/CSwinetd"
cp -R Sources/SwinetdCore Sources/CSwinetd "$OUT/src/"
git rev-parse HEAD > "$OUT/src/COMMIT" 2>/dev/null || true
git status --porcelain Sources > "$OUT/src/DIRTY" 2>/dev/null || true

# C shim: no sanitizer (the spawn child runs on a private stack inside the parent's memory after
# clone(CLONE_VM|CLONE_VFORK); ASan's shadow writes there would corrupt the parent's).
for c in "$OUT"/src/CSwinetd/*.c; do
    clang -c -O1 -g -fPIC -I "$OUT/src/CSwinetd/include" "$c" -o "$OUT/obj/$(basename "$c" .c).o"
done
cat > "$OUT/cmod/module.modulemap" <<MAP
module CSwinetd {
    header "$OUT/src/CSwinetd/include/CSwinetd.h"
    export *
}
MAP

# The dependencies (swift-log, swift-nio, swift-nio-ssl for TLS) come from the package's own debug
# build: their modules, C module maps and object files (not instrumented: they are not under test).
swift build --product swinetd >&2
DEPS=$ROOT/.build/debug
DEP_FLAGS="-I $DEPS/Modules"
# C modules that ship their own module map in the checkout (BoringSSL, atomics shims, ...).
for map in "$ROOT"/.build/checkouts/*/Sources/*/include/module.modulemap; do
    DEP_FLAGS="$DEP_FLAGS -I $(dirname "$map") -Xcc -fmodule-map-file=$map"
done
for map in "$DEPS"/*.build/module.modulemap; do
    case $map in */CSwinetd.build/*) continue ;; esac
    DEP_FLAGS="$DEP_FLAGS -Xcc -fmodule-map-file=$map"
done
# (Some object names hold blanks: a response file keeps them whole.)
find "$DEPS"/*.build -name '*.o' | grep -vE '/(SwinetdCore|swinetd|swinetd_probe|CSwinetd|[A-Za-z]*Tests|NIOTestUtils|[A-Za-z]*-tool|ArgumentParser[A-Za-z]*)\.build/' \
    | sort | sed 's/["\\ ]/\\&/g' > "$OUT/dep-objects.rsp"

CORE=$(find "$OUT/src/SwinetdCore" -name '*.swift' | sort)
for target in $TARGETS; do
    flag=$(echo "FUZZ_$target" | tr '[:lower:]' '[:upper:]')
    echo "building fuzz-$target" >&2
    swiftc -sanitize=fuzzer,address -parse-as-library -module-name SwinetdFuzz -swift-version 6 \
        -enable-upcoming-feature ExistentialAny -enable-upcoming-feature MemberImportVisibility \
        -O -g -D "$flag" -I "$OUT/cmod" $DEP_FLAGS \
        $CORE Fuzz/FuzzEntry.swift "$OUT"/obj/spawn.o "$OUT"/obj/syscalls.o @"$OUT/dep-objects.rsp" -lstdc++ \
        -o "$OUT/fuzz-$target"
done
ls -la "$OUT"/fuzz-* >&2
