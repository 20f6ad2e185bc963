# The two commands of the README:
#   make run    set everything up, fetch MNIST, train the main job: relaxed predictive
#               coding on all 60,000 MNIST images with the batched dense engine
#   make test   set everything up, run the whole test suite
VENV ?= .venv
OUT ?= results/main
.PHONY: env data run test clean
env:
	NEUROSIM_VENV=$(VENV) bash scripts/setup_env.sh
data: env
	$(VENV)/bin/neurosim data fetch mnist
run: data
	$(VENV)/bin/neurosim train --target dense --train-size 0 --test-size 0 --epochs 2 \
	  --evaluations 4 --batch-size 64 --optimizer adam --float32 --weight-std 0.02 --out $(OUT)
test: env
	$(VENV)/bin/python -m pytest -n 2 --dist loadgroup -m "not slow" -q
clean:
	rm -rf $(VENV) results build
