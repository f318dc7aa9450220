#!/bin/sh
# Turns an installed tree (make install DESTDIR=STAGE PREFIX=/usr) into a .deb with dpkg-deb.
# Usage: VERSION=0.1.0 ARCH=amd64 sh packaging/build-deb.sh STAGE OUTPUT.deb
# Called by `make deb`; needs dpkg-deb, and uses dpkg-shlibdeps (dpkg-dev) for Depends when present.
set -eu

stage=$1
output=$2
: "${VERSION:?VERSION is not set}"
: "${ARCH:?ARCH is not set}"
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
case $stage in /*) ;; *) stage=$(pwd)/$stage ;; esac
binary=$stage/usr/sbin/swinetd
[ -x "$binary" ] || { echo "build-deb: $binary is missing (run make deb)" >&2; exit 1; }

# Debian policy: manual pages compressed with gzip -9n (no name or time stamp inside).
find "$stage/usr/share/man" -type f ! -name '*.gz' -exec gzip -9nf {} +

# Depends: what the dynamic binary needs, with the versions the shlibs files give.
depends=
if command -v dpkg-shlibdeps >/dev/null 2>&1; then
    scratch=$(mktemp -d)
    mkdir "$scratch/debian"
    printf 'Source: swinetd\n\nPackage: swinetd\nArchitecture: any\n' > "$scratch/debian/control"
    depends=$(cd "$scratch" && dpkg-shlibdeps -O -e"$binary" 2>/dev/null | sed -n 's/^shlibs:Depends=//p') || depends=
    rm -rf "$scratch"
fi
if [ -z "$depends" ]; then
    # Fallback without dpkg-dev: the packages that own the libraries ldd lists, unversioned.
    depends=$(ldd "$binary" | awk '$3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
        while read -r lib; do dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null; done |
        cut -d: -f1 | sort -u | paste -sd, - | sed 's/,/, /g')
fi
[ -n "$depends" ] || depends=libc6

# The project's licence, if it states one.
license_file=
for name in LICENSE LICENSE.txt LICENSE.md COPYING; do
    if [ -f "$top/$name" ]; then license_file=$top/$name; break; fi
done
docdir=$stage/usr/share/doc/swinetd
mkdir -p "$docdir"
while IFS= read -r line; do
    if [ "$line" = "License: @LICENSE@" ]; then
        if [ -n "$license_file" ]; then
            echo "License: as follows ($(basename "$license_file") of the source tree)"
            echo
            cat "$license_file"
        else
            echo "License: not stated (the source tree has no LICENSE or COPYING file yet)"
        fi
    else
        printf '%s\n' "$line"
    fi
done < "$here/debian/copyright.in" > "$docdir/copyright"
chmod 644 "$docdir/copyright"

rm -rf "$stage/DEBIAN"
mkdir -p "$stage/DEBIAN"
maintainer=${DEB_MAINTAINER:-$(git -C "$top" log -1 --format='%an <%ae>' 2>/dev/null || true)}
[ -n "$maintainer" ] || maintainer="swinetd maintainers <root@localhost>"
installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s|@VERSION@|$VERSION|" -e "s|@ARCH@|$ARCH|" -e "s|@MAINTAINER@|$maintainer|" \
    -e "s|@INSTALLED_SIZE@|$installed_size|" -e "s|@DEPENDS@|$depends|" \
    "$here/debian/control.in" > "$stage/DEBIAN/control"
# Every file under /etc is a conffile: dpkg keeps an admin's edits on upgrade and removal.
(cd "$stage" && find etc -type f | sed 's|^|/|' | sort) > "$stage/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    install -m 755 "$here/debian/$script" "$stage/DEBIAN/$script"
done
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort | xargs md5sum) \
    > "$stage/DEBIAN/md5sums"
chmod 644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

mkdir -p "$(dirname "$output")"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$output"
echo "built $output (Depends: $depends)"
