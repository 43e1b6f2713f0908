# Sourced by scripts/kafka.sh and scripts/debezium.sh: the Maven build of a test-bed project
# under tools/. The caller defines log().

# maven_build DIR WHAT: `mvn package` in DIR (its jars copied to DIR/target/lib, resolved once
# into ~/.m2), only when DIR/pom.xml or DIR/src changed since the last build; WHAT says what is
# resolved and built. Tests may run the tools several times at once: one build at a time, the
# others wait on DIR/target/.build.lock and then find it done.
maven_build() {
  local tools="$1" what="$2"
  local stamp="$tools/target/.built" lib="$tools/target/lib"
  mkdir -p "$tools/target"
  exec 9>"$tools/target/.build.lock"
  flock 9
  if [ -f "$stamp" ] && [ -d "$lib" ] && [ -z "$(find "$tools/pom.xml" "$tools/src" -newer "$stamp" -print -quit 2>/dev/null)" ]; then
    flock -u 9; exec 9>&-
    return 0
  fi
  command -v mvn >/dev/null || { log "mvn not found: run scripts/setup.sh"; exit 1; }
  command -v java >/dev/null || { log "java not found: run scripts/setup.sh"; exit 1; }
  log "resolving $what (mvn package; cached in ~/.m2)"
  local started=$SECONDS
  rm -rf "$lib"
  (cd "$tools" && mvn -B -q -Dstyle.color=never -DskipTests package >&2)
  touch "$stamp"
  log "built in $((SECONDS - started)) s"
  flock -u 9; exec 9>&-
}
