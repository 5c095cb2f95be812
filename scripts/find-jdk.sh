# Sourced by ./quant4j and ./test: sets JAVA_HOME to a JDK 25+ (JAVA_HOME first, then /usr/lib/jvm), or explains and exits.
quant4j_find_jdk() {
  local cand v
  for cand in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*; do
    [ -n "$cand" ] && [ -x "$cand/bin/java" ] && [ -x "$cand/bin/javac" ] || continue
    v=$("$cand/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
    if [ "${v%%.*}" -ge 25 ] 2>/dev/null; then echo "$cand"; return 0; fi
  done
  return 1
}
if ! QUANT4J_JDK=$(quant4j_find_jdk); then
  echo "quant4j: JDK 25 or newer is required and was not found." >&2
  echo "  looked at: \$JAVA_HOME (${JAVA_HOME:-unset}) and every JDK under /usr/lib/jvm" >&2
  echo "  install one (for example Temurin 25) and set JAVA_HOME to it." >&2
  exit 3
fi
export JAVA_HOME="$QUANT4J_JDK"
if ! command -v mvn >/dev/null 2>&1; then
  echo "quant4j: Maven (mvn) is needed to build quant4j and was not found (Debian: apt-get install maven)." >&2
  exit 3
fi
