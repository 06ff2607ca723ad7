#!/usr/bin/env bash
# Prints the python of a separate environment with AlpacaEval 0.6.6 (the peer pasture is compared with).
# Reuses $PASTURE_PEER_VENV when it points at a venv that already has alpaca_eval; otherwise creates
# benchmarks/.peer-venv (never a dependency of pasture itself).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${PASTURE_PEER_VENV:-$here/.peer-venv}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import alpaca_eval" 2>/dev/null; then
  echo "$venv/bin/python"
  exit 0
fi
echo "creating the peer environment in $venv (alpaca-eval==0.6.6)" >&2
python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet "alpaca-eval==0.6.6" >&2
"$venv/bin/python" -c "import alpaca_eval" >&2
echo "$venv/bin/python"
