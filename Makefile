# The two commands of the README:
#   make run    set everything up, fetch MNIST, train the main job
#   make test   set everything up, run the whole test suite
VENV ?= .venv
OUT ?= results/main
.PHONY: env data run test clean
env:
	NEUROSIM_VENV=$(VENV) bash scripts/setup_env.sh
data: env
	$(VENV)/bin/neurosim data fetch mnist
run: data
	$(VENV)/bin/neurosim train --out $(OUT)
test: env
	$(VENV)/bin/python -m pytest -n 2 -m "not slow" -q
clean:
	rm -rf $(VENV) results build
