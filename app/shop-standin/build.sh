#!/usr/bin/env bash
# Build app/shop-standin/build/shop-standin.jar (and build/shop-standin.war) with plain javac + jar
# (no Maven/Gradle).
# The jar's manifest points (Class-Path) at Debian's MariaDB Connector/J, so `java -jar` works
# on any host with the libmariadb-java package installed. The WAR (Jakarta Servlet 5+, Tomcat 10)
# holds the same classes plus the servlet front end (src-servlet/) and a copy of the connector in
# WEB-INF/lib; it is built when a Jakarta Servlet API jar is found (Debian: libtomcat10-java or
# tomcat10), see SHOP_BUILD_WAR. Re-running is safe: the build is reproducible (fixed entry
# timestamps), so the same sources give the same sha256.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="${here}/src"
src_servlet="${here}/src-servlet"
webapp="${here}/webapp"
# SHOP_BUILD_DIR: another output directory (tests that build a variant leave the shared artifact alone).
out="${SHOP_BUILD_DIR:-${here}/build}"
jar_path="${out}/shop-standin.jar"
war_path="${out}/shop-standin.war"
src_tomcat="${here}/src-tomcat"
sessions_jar_path="${out}/gearlift-tomcat-sessions.jar"
# auto: build the WAR when a servlet API jar is found; yes: fail without one; no: jar only.
build_war="${SHOP_BUILD_WAR:-auto}"
# The Jakarta Servlet API to compile the servlet front end against (compile time only; the
# container provides it at run time).
servlet_api=""
for candidate in "${SHOP_SERVLET_API_JAR:-}" /usr/share/java/tomcat10-servlet-api.jar \
  /usr/share/tomcat10/lib/servlet-api.jar; do
  if [[ -n "${candidate}" && -r "${candidate}" ]]; then
    servlet_api="${candidate}"
    break
  fi
done
# Tomcat's own jars, to compile the session store's manager (src-tomcat/) against (compile time
# only: the jar goes into Tomcat's lib directory, next to them). Debian: tomcat10-common.
tomcat_home="${SHOP_TOMCAT_HOME:-/usr/share/tomcat10}"
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
# The CPU time each customer request costs (microseconds, gearlift.shopstandin.Work), built into the
# jar and WAR: scripts/bench-peak sets it; unset or 0 builds the shop without (the default).
work_cpu_us="${SHOP_WORK_CPU_US:-0}"
[[ "${work_cpu_us}" =~ ^[0-9]{1,7}$ && "${work_cpu_us}" -le 1000000 ]] \
  || die "SHOP_WORK_CPU_US must be an integer 0..1000000 (microseconds of CPU per request; got: ${work_cpu_us})"
work_cpu_us=$((10#${work_cpu_us}))
case "${build_war}" in
  auto | yes | no) ;;
  *) die "SHOP_BUILD_WAR must be auto, yes or no (got: ${build_war})" ;;
esac
if [[ -n "${SHOP_SERVLET_API_JAR:-}" && "${servlet_api}" != "${SHOP_SERVLET_API_JAR}" ]]; then
  die "SHOP_SERVLET_API_JAR=${SHOP_SERVLET_API_JAR} is not readable"
fi
if [[ "${build_war}" == yes && -z "${servlet_api}" ]]; then
  die "SHOP_BUILD_WAR=yes but no Jakarta Servlet API jar found; install libtomcat10-java (or tomcat10) or set SHOP_SERVLET_API_JAR"
fi
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
if [[ "${work_cpu_us}" -gt 0 ]]; then
  printf 'work.cpu.us=%s\n' "${work_cpu_us}" >"${work}/classes/gearlift/shopstandin/work.properties"
fi

cat >"${work}/MANIFEST.MF" <<EOF
Main-Class: gearlift.shopstandin.Main
Class-Path: file:${connector}
Implementation-Title: gearlift shop-standin
EOF

jar --create --file "${work}/shop-standin.jar" --manifest "${work}/MANIFEST.MF" \
  --date "${jar_date}" -C "${work}/classes" .
mv -f "${work}/shop-standin.jar" "${jar_path}"

if [[ "${build_war}" != no && -n "${servlet_api}" ]]; then
  mkdir -p "${work}/war/WEB-INF/classes" "${work}/war/WEB-INF/lib" "${work}/war/META-INF"
  mapfile -t servlet_sources < <(find "${src_servlet}" -name '*.java' -type f | LC_ALL=C sort)
  [[ ${#servlet_sources[@]} -gt 0 ]] || die "no Java sources under ${src_servlet}"
  cp -R "${work}/classes/." "${work}/war/WEB-INF/classes/"
  javac --release 17 -encoding UTF-8 -Xlint:all -Werror -cp "${work}/classes:${servlet_api}" \
    -d "${work}/war/WEB-INF/classes" "${servlet_sources[@]}"
  cp "${webapp}/WEB-INF/web.xml" "${work}/war/WEB-INF/web.xml"
  cp "${webapp}/META-INF/context.xml" "${work}/war/META-INF/context.xml"
  # The web application brings its own driver (Tomcat's class path has none).
  cp "$(readlink -f "${connector}")" "${work}/war/WEB-INF/lib/mariadb-java-client.jar"
  printf 'Implementation-Title: gearlift shop-standin (war)\n' >"${work}/WAR-MANIFEST.MF"
  jar --create --file "${work}/shop-standin.war" --manifest "${work}/WAR-MANIFEST.MF" \
    --date "${jar_date}" -C "${work}/war" .
  mv -f "${work}/shop-standin.war" "${war_path}"
  war_line="war: ${war_path}"$'\n'"war_sha256: $(sha256sum "${war_path}" | cut -d' ' -f1)"$'\n'"servlet_api: ${servlet_api}"
  # The session store for Tomcat (RedisSessionManager): its own jar for Tomcat's lib directory
  # (a Manager is loaded by Tomcat's class loader, not the web application's), with the jar's
  # Redis client and env file reader compiled in. Built when Tomcat's catalina.jar is there.
  if [[ -r "${tomcat_home}/lib/catalina.jar" && -r "${tomcat_home}/bin/tomcat-juli.jar" ]]; then
    mkdir -p "${work}/tomcat-sessions"
    mapfile -t tomcat_sources < <(
      {
        find "${src_tomcat}" -name '*.java' -type f
        printf '%s\n' "${src}/gearlift/shopstandin/RedisClient.java" "${src}/gearlift/shopstandin/RedisConfig.java" \
          "${src}/gearlift/shopstandin/EnvFile.java"
      } | LC_ALL=C sort
    )
    tomcat_cp=""
    for name in catalina.jar tomcat-api.jar tomcat-util.jar servlet-api.jar; do
      tomcat_cp+="${tomcat_home}/lib/${name}:"
    done
    javac --release 17 -encoding UTF-8 -Xlint:all -Xlint:-serial -Xlint:-classfile -Werror \
      -cp "${tomcat_cp}${tomcat_home}/bin/tomcat-juli.jar" -d "${work}/tomcat-sessions" "${tomcat_sources[@]}"
    printf 'Implementation-Title: gearlift Tomcat session store (RedisSessionManager)\n' >"${work}/TS-MANIFEST.MF"
    jar --create --file "${work}/gearlift-tomcat-sessions.jar" --manifest "${work}/TS-MANIFEST.MF" \
      --date "${jar_date}" -C "${work}/tomcat-sessions" .
    mv -f "${work}/gearlift-tomcat-sessions.jar" "${sessions_jar_path}"
    war_line+=$'\n'"tomcat_sessions_jar: ${sessions_jar_path}"$'\n'"tomcat_sessions_sha256: $(sha256sum "${sessions_jar_path}" | cut -d' ' -f1)"
  else
    rm -f "${sessions_jar_path}"
    war_line+=$'\n'"tomcat_sessions_jar: skipped (no ${tomcat_home}/lib/catalina.jar: install tomcat10-common, or set SHOP_TOMCAT_HOME)"
  fi
elif [[ "${build_war}" == no ]]; then
  war_line="war: skipped (SHOP_BUILD_WAR=no)"
else
  rm -f "${war_path}"
  war_line="war: skipped (no Jakarta Servlet API jar: install libtomcat10-java or tomcat10, or set SHOP_SERVLET_API_JAR)"
fi

connector_version="$(unzip -p "${connector}" META-INF/MANIFEST.MF 2>/dev/null \
  | sed -n 's/^Bundle-Version: *\([^[:space:]]*\).*/\1/p' | head -n1 || true)"
echo "jar: ${jar_path}"
echo "sha256: $(sha256sum "${jar_path}" | cut -d' ' -f1)"
echo "work_cpu_us: ${work_cpu_us}"
echo "connector: ${connector} (Connector/J ${connector_version:-unknown version})"
echo "${war_line}"
