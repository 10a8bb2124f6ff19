# Sourced by the web address scan benchmarks: `lists` becomes the `--url-list` arguments of
# every list in the directory $dir but the benign names, the category from the file name
# (`malware-domains.txt` -> `malware=...`).
lists=()
for f in "$dir"/*.txt; do
  name=$(basename "$f")
  case "$name" in benign-*) continue ;; esac
  lists+=("${name%%-*}=$f")
done
