#!/usr/bin/env bash
# Build app/shop-standin/build/shop-standin.jar with plain javac + jar (no Maven/Gradle).
# The jar's manifest points (Class-Path) at Debian's MariaDB Connector/J, so `java -jar` works
# on any host with the libmariadb-java package installed. Re-running is safe: the build is
# reproducible (fixed entry timestamps), so the same sources give the same sha256.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="${here}/src"
out="${here}/build"
jar_path="${out}/shop-standin.jar"
# Debian's libmariadb-java installs the unversioned name as the real file; keep the manifest on
# it so a package update does not break the Class-Path.
connector="${SHOP_CONNECTOR_JAR:-/usr/share/java/mariadb-java-client.jar}"
# Entry timestamps for a reproducible jar (SOURCE_DATE_EPOCH wins when set).
if [[ -n "${SOURCE_DATE_EPOCH:-}" ]]; then
  jar_date="$(date -u -d "@${SOURCE_DATE_EPOCH}" +%Y-%m-%dT%H:%M:%SZ)"
else
  jar_date="2024-01-01T00:00:00Z"
fi

die() {
  echo "build.sh: error: $*" >&2
  exit 1
}

command -v javac >/dev/null 2>&1 || die "javac not found; install a JDK 17 (Debian: openjdk-17-jdk-headless)"
command -v jar >/dev/null 2>&1 || die "jar not found; install a JDK 17 (Debian: openjdk-17-jdk-headless)"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found (coreutils)"
[[ -r "${connector}" ]] || die "MariaDB Connector/J not found at ${connector}; install libmariadb-java"
case "${connector}" in
  /*) ;;
  *) die "SHOP_CONNECTOR_JAR must be an absolute path (it goes into the manifest Class-Path)" ;;
esac

javac_major="$(javac -version 2>&1 | sed -n 's/^javac \([0-9][0-9]*\).*/\1/p')"
[[ -n "${javac_major}" && "${javac_major}" -ge 17 ]] \
  || die "javac 17 or newer required (found: $(javac -version 2>&1 | head -n1))"

mkdir -p "${out}"
work="$(mktemp -d "${out}/.build.XXXXXX")"
trap 'rm -rf "${work}"' EXIT

mapfile -t sources < <(find "${src}" -name '*.java' -type f | LC_ALL=C sort)
[[ ${#sources[@]} -gt 0 ]] || die "no Java sources under ${src}"

mkdir -p "${work}/classes"
javac --release 17 -encoding UTF-8 -Xlint:all -Werror -d "${work}/classes" "${sources[@]}"

cat >"${work}/MANIFEST.MF" <<EOF
Main-Class: gearlift.shopstandin.Main
Class-Path: file:${connector}
Implementation-Title: gearlift shop-standin
EOF

jar --create --file "${work}/shop-standin.jar" --manifest "${work}/MANIFEST.MF" \
  --date "${jar_date}" -C "${work}/classes" .
mv -f "${work}/shop-standin.jar" "${jar_path}"

connector_version="$(unzip -p "${connector}" META-INF/MANIFEST.MF 2>/dev/null \
  | sed -n 's/^Bundle-Version: *\([^[:space:]]*\).*/\1/p' | head -n1 || true)"
echo "jar: ${jar_path}"
echo "sha256: $(sha256sum "${jar_path}" | cut -d' ' -f1)"
echo "connector: ${connector} (Connector/J ${connector_version:-unknown version})"
