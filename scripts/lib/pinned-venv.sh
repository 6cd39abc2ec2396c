# Sourced by scripts that need Python packages: `pinned_venv PYTHON VENV LABEL PIN...` makes VENV
# with exactly PIN... installed, and remakes it only when the pins change (a stamp file records
# them), so reruns reuse it.
pinned_venv() {
    local python=$1 venv=$2 label=$3
    shift 3
    local stamp=$venv/.verinfer-pins
    if [[ ! -x $venv/bin/python || ! -f $stamp || $(cat "$stamp") != "$*" ]]; then
        echo "$label: making $venv ($*)"
        rm -rf "$venv"
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "$@"
        echo "$*" >"$stamp"
    fi
}
