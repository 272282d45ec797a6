#!/usr/bin/env bash
# Prints where scripts/setup.sh installs tools that do not come from apt (nats-server).
echo "${RESIZER_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/resizer-tools}"
