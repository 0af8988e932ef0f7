#!/usr/bin/env bash
# Remakes the README's pictures of the HTML report from the bundled assets (docs/report*.png, docs/confusion-matrix.png).
# Needs: the .NET SDK, Debian's chromium, and pngquant (apt-get install -y chromium pngquant). Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

dotnet run -c Release --project samples/EvaluateAndReport -- assets/fashion-mnist "$work/report.html"

# One page per picture: the report's head (styles) plus one section. The report writes one section per line.
part() { # part NAME SECTION_ID...
  { sed -n '1,/<main id="report">/p' "$work/report.html"
    for id in "${@:2}"; do grep "^<section id=\"$id\"" "$work/report.html"; done
    echo '</main></body></html>'; } > "$work/$1.html"
}
part confusion confusion confused-pairs
part mistakes worst-mistakes

shot() { # shot PAGE WIDTH HEIGHT OUT.png
  local profile; profile=$(mktemp -d)
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile" \
    --window-size="$2,$3" --screenshot="$work/shot.png" "file://$work/$1" 2>/dev/null
  rm -rf "$profile"
  pngquant --force --quality=60-90 --output "$4" "$work/shot.png"
}
shot report.html 1000 1250 docs/report.png
shot report.html 390 844 docs/report-phone.png
shot confusion.html 1000 900 docs/confusion-matrix.png
shot mistakes.html 1000 560 docs/report-mistakes.png
ls -l docs/*.png
