# The README's two commands: `make demo` (run the main job) and `make test`.
# Both create or refresh .venv (idempotent; quick when up to date).
# A GPU user picks a CUDA build of torch with e.g.
#   make test TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.restore-installed
# The TORCH_SPEC the venv was built with: a new one reinstalls torch and rebuilds our kernels against it.
SPEC_FILE := $(VENV)/.torch-spec
SOURCES := pyproject.toml setup.py $(shell find csrc -type f 2>/dev/null)

.PHONY: venv test test-all demo bench lint build clean train-csa train-deepfill train-glcic train-glcic-32 train-wgan train-deepgin FORCE

venv: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Rewritten only when TORCH_SPEC changes, so its date says when the spec last changed.
$(SPEC_FILE): FORCE | $(PY)
	@echo '$(TORCH_SPEC)' | cmp -s - $@ || echo '$(TORCH_SPEC)' > $@

# opencv-python-headless (what venvs made before the contrib build have) and our
# opencv-contrib-python-headless install the same cv2 folder: with both, cv2 breaks. When the
# former is there it goes, and the contrib build with it (its files may be half overwritten),
# so that the install of the package lays one clean cv2.
$(STAMP): $(SOURCES) $(SPEC_FILE) | $(PY)
	$(PY) -m pip install -q --disable-pip-version-check setuptools wheel
	if ! cmp -s $(SPEC_FILE) $(VENV)/.torch-installed; then \
	  $(PY) -m pip uninstall -q -y torch; rm -rf build restore/_C*.so; \
	  $(PY) -m pip install -q --disable-pip-version-check $(TORCH_SPEC) && cp $(SPEC_FILE) $(VENV)/.torch-installed; \
	fi
	if $(PY) -m pip show -q opencv-python-headless 2>/dev/null; then \
	  $(PY) -m pip uninstall -q -y opencv-python-headless opencv-contrib-python-headless; \
	fi
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation -e ".[dev]"
	touch $(STAMP)

test: venv
	$(PY) -m pytest -q

test-all: venv
	$(PY) -m pytest -q -m "slow or not slow"

demo: venv
	$(PY) -m restore.demo --out demo-out

# Every benchmark on this machine (long: run it otherwise idle); each prints a table and writes bench-out/*.json.
bench: venv
	$(PY) benchmarks/kernels.py
	$(PY) benchmarks/memory_format.py --set width=26
	$(PY) benchmarks/memory_format.py --method wgan --size 64 --batch 32 --json bench-out/memory-format-wgan.json
	$(PY) benchmarks/speed.py --method csa --set width=64 --set max_channels=512
	$(PY) benchmarks/quality.py --methods csa --ensemble 8
	$(PY) benchmarks/quality.py --methods deepfill --reuse bench-out/quality.json --json bench-out/quality-deepfill.json
	$(PY) benchmarks/speed.py --method deepfill
	$(PY) benchmarks/speed.py --method deepfill --size 512 --batches 1 --no-ensemble --no-reference --json bench-out/speed-deepfill-512.json
	$(PY) benchmarks/attention_memory.py
	$(PY) benchmarks/quality.py --methods glcic --blend poisson --reuse bench-out/quality.json --json bench-out/quality-glcic.json
	$(PY) benchmarks/speed.py --method glcic --no-ensemble --no-reference --json bench-out/speed-glcic.json
	$(PY) benchmarks/glcic_32.py --checkpoint final=restore/weights/glcic-32.pt
	$(PY) benchmarks/poisson.py
	$(PY) benchmarks/wgan_ablation.py --checkpoint restore/weights/wgan.pt --figure docs/wgan-ablation.png
	OMP_NUM_THREADS=1 $(PY) benchmarks/batch.py
	for side in 1024 2048 4096; do $(PY) benchmarks/batch.py --sections large --large $$side --large-hole-ratio 0.3 \
	  --run deepfill=deepfill --large-methods deepfill --json bench-out/batch-deepfill-$$side.json; done

# Keep training the shipped CSA model: resumes $(CSA_RUN) when it exists, else starts a new run
# from $(CSA_INIT) (its weights and configuration; the optimiser starts afresh; the
# learning rate warms up, then decays linearly to 0 at CSA_ITERS of the new run's own steps).
# On a GPU: make train-csa CSA_BATCH=32 (12–17 steps/s on one H100). The new run keeps the shipped
# configuration: L1 (hole pixels ×6) with the patch discriminator's RaLSGAN (adversarial_weight 0.01,
# moving average 0.995) at lr 1e-4; add --set lr=2e-4 to CSA_SET at batch 32 on a GPU.
# CSA_INIT=restore/weights/csa-psnr.pt starts from the PSNR-only weights instead.
# Then: python -m restore.training.ship $(CSA_RUN)/last.pt restore/weights/csa.pt
CSA_RUN ?= runs/csa-finetune
CSA_INIT ?= restore/weights/csa.pt
CSA_ITERS ?= 20000
CSA_BATCH ?= 8
CSA_SET ?=
CSA_TRAIN_FLAGS ?= --data ../shared/data/train --checkpoint-every 250 --keep-every 2500 --sample-every 500 --eval-every 1000
# OpenMP threads that spin between parallel regions: a CPU training step 1.44 s (PASSIVE) -> 1.26 s
# (2-core Xeon, batch 8, 256²); set OMP_WAIT_POLICY=PASSIVE to keep the machine responsive instead.
OMP_WAIT_POLICY ?= ACTIVE
train-csa: export OMP_WAIT_POLICY := $(OMP_WAIT_POLICY)
train-csa: venv
	if [ -f $(CSA_RUN)/last.pt ]; then \
	  $(VENV)/bin/restore train --method csa --out $(CSA_RUN) --resume --iters $(CSA_ITERS) $(CSA_TRAIN_FLAGS); \
	else \
	  $(VENV)/bin/restore train --method csa --out $(CSA_RUN) --init $(CSA_INIT) --iters $(CSA_ITERS) --batch-size $(CSA_BATCH) --warmup 300 --lr-decay-from 300 $(CSA_SET) $(CSA_TRAIN_FLAGS); \
	fi

# DeepFill v1 (resumable: run it again to continue): resumes $(DEEPFILL_RUN) when it exists, else
# starts a new run from $(DEEPFILL_INIT) (the shipped weights and configuration: run folders do not
# outlive a machine, the repository does; the critics and optimisers start afresh) or, with
# DEEPFILL_INIT= (empty), from scratch. 256² crops, batch 4, bf16, the generator alone on its L1
# terms for the run's first pretrain_steps (the reference code's pretrain; counted in the new run's
# own steps), then WGAN-GP with 5 critic steps per generator step. On a GPU: DEEPFILL_BATCH=16.
# Then: python -m restore.training.ship $(DEEPFILL_RUN)/last.pt restore/weights/deepfill.pt
DEEPFILL_RUN ?= runs/deepfill-a
DEEPFILL_INIT ?= restore/weights/deepfill.pt
DEEPFILL_ITERS ?= 20000
DEEPFILL_BATCH ?= 4
DEEPFILL_TRAIN_FLAGS ?= --data ../shared/data/train --checkpoint-every 100 --keep-every 1000 --sample-every 500 --eval-every 500
train-deepfill: export OMP_WAIT_POLICY := $(OMP_WAIT_POLICY)
train-deepfill: venv
	if [ -f $(DEEPFILL_RUN)/last.pt ]; then \
	  $(VENV)/bin/restore train --method deepfill --out $(DEEPFILL_RUN) --resume --iters $(DEEPFILL_ITERS) $(DEEPFILL_TRAIN_FLAGS); \
	else \
	  $(VENV)/bin/restore train --method deepfill --out $(DEEPFILL_RUN) $(if $(DEEPFILL_INIT),--init $(DEEPFILL_INIT)) --size 256 --batch-size $(DEEPFILL_BATCH) --iters $(DEEPFILL_ITERS) --warmup 100 --bf16 on $(if $(DEEPFILL_INIT),,--set pretrain_steps=4000) $(DEEPFILL_TRAIN_FLAGS); \
	fi

# GLCIC at CIFAR scale (resumable; without a run folder, a new run starts from $(GLCIC32_INIT),
# as DeepFill's does; GLCIC32_INIT= starts from scratch): the 32² configuration (restore/models/glcic/cifar32.toml: the
# seed's 5-12 px boxes, 16² local window, least squares GAN, phases 1500/150 steps), batch 256, bf16.
# Then: python -m restore.training.ship $(GLCIC32_RUN)/last.pt restore/weights/glcic-32.pt --batch-norm-batches 16
#       python -m restore.training.ship $(GLCIC32_RUN)/step-001500.pt $(GLCIC32_RUN)/phase1-shipped.pt --batch-norm-batches 16
#       python benchmarks/glcic_32.py --checkpoint phase1=$(GLCIC32_RUN)/phase1-shipped.pt --checkpoint final=restore/weights/glcic-32.pt
GLCIC32_RUN ?= runs/glcic32-a
GLCIC32_INIT ?= restore/weights/glcic-32.pt
# The shipped 32² generator is past its phase 1; its discriminators are not shipped: a run from it
# trains fresh discriminators alone for 150 steps, then both.
GLCIC32_INIT_SET ?= --set generator_steps=0 --set discriminator_steps=150
GLCIC32_ITERS ?= 20000
GLCIC_TRAIN_FLAGS ?= --data ../shared/data/train --checkpoint-every 100 --keep-every 500 --sample-every 500 --eval-every 500
train-glcic-32: export OMP_WAIT_POLICY := $(OMP_WAIT_POLICY)
train-glcic-32: venv
	if [ -f $(GLCIC32_RUN)/last.pt ]; then \
	  $(VENV)/bin/restore train --method glcic --out $(GLCIC32_RUN) --resume --iters $(GLCIC32_ITERS) $(GLCIC_TRAIN_FLAGS); \
	else \
	  $(VENV)/bin/restore train --method glcic --out $(GLCIC32_RUN) $(if $(GLCIC32_INIT),--init $(GLCIC32_INIT) $(GLCIC32_INIT_SET),--config restore/models/glcic/cifar32.toml) --size 32 --batch-size 256 --iters $(GLCIC32_ITERS) --warmup 100 --bf16 on $(GLCIC_TRAIN_FLAGS); \
	fi

# GLCIC at 256² (resumable; without a run folder, a new run starts from $(GLCIC_INIT) and its
# configuration, its phases counted afresh; GLCIC_INIT= starts from scratch): the paper's networks, its boxes (96-128 px) and the project's irregular
# masks, batch 4, bf16 (a phase-1 step: about 3.4 s on 2 cores). The paper's phases (90,000 / 10,000
# steps at batch 96 on 4 GPUs) are out of a CPU's reach; GLCIC_SET shortens them.
# From the shipped file (phase 1 done) a new run takes GLCIC_INIT_SET: fresh discriminators alone
# for 300 steps, then both networks, the adversarial term at α 0.02 (the seed's 0.0005 is under 1 % of
# the update: benchmarks/loss_balance.py; 0.02 about 15 %). runs/glcic-c is such a run (1,602
# steps; not shipped: its fills show a plaid, see the README).
# Then: python -m restore.training.ship $(GLCIC_RUN)/last.pt restore/weights/glcic.pt [--no-average] --batch-norm-batches 16
GLCIC_RUN ?= runs/glcic-c
GLCIC_INIT ?= restore/weights/glcic.pt
GLCIC_INIT_SET ?= --set generator_steps=0 --set discriminator_steps=300 --set adversarial_weight=0.02
GLCIC_ITERS ?= 20000
GLCIC_BATCH ?= 4
GLCIC_SET ?= --set generator_steps=6000 --set discriminator_steps=600 --set lr=0.0005
train-glcic: export OMP_WAIT_POLICY := $(OMP_WAIT_POLICY)
train-glcic: venv
	if [ -f $(GLCIC_RUN)/last.pt ]; then \
	  $(VENV)/bin/restore train --method glcic --out $(GLCIC_RUN) --resume --iters $(GLCIC_ITERS) $(GLCIC_TRAIN_FLAGS); \
	else \
	  $(VENV)/bin/restore train --method glcic --out $(GLCIC_RUN) $(if $(GLCIC_INIT),--init $(GLCIC_INIT) $(GLCIC_INIT_SET),$(GLCIC_SET)) --size 256 --batch-size $(GLCIC_BATCH) --iters $(GLCIC_ITERS) --warmup 100 --bf16 on $(GLCIC_TRAIN_FLAGS); \
	fi

# The improved WGAN of the latent-search method (resumable; without a run folder, a new run starts
# from $(WGAN_INIT), generator and critic; WGAN_INIT= starts from scratch): 64² views of the training photos
# (random crops of half to all of the short side), width 32 (2.4 M + 1.9 M parameters: the paper's
# width 64 is 32 MB in float16, over the 16 MB limit of a shipped file), batch 32, bf16, Adam 1e-4
# (0.0, 0.9), 5 critic steps (about 10 s per step on 2 cores). Sample grids every 250 steps; no
# learning curve (each point would be a minute-long search per image).
# Then: python -m restore.training.ship $(WGAN_RUN)/last.pt restore/weights/wgan.pt
#       python benchmarks/wgan_ablation.py --checkpoint restore/weights/wgan.pt
WGAN_RUN ?= runs/wgan-a
WGAN_INIT ?= restore/weights/wgan.pt
WGAN_ITERS ?= 50000
WGAN_BATCH ?= 32
WGAN_SET ?= --set width=32
WGAN_TRAIN_FLAGS ?= --data ../shared/data/train --checkpoint-every 25 --keep-every 250 --sample-every 250 --eval-every 0
train-wgan: export OMP_WAIT_POLICY := $(OMP_WAIT_POLICY)
train-wgan: venv
	if [ -f $(WGAN_RUN)/last.pt ]; then \
	  $(VENV)/bin/restore train --method wgan --out $(WGAN_RUN) --resume --iters $(WGAN_ITERS) $(WGAN_TRAIN_FLAGS); \
	else \
	  $(VENV)/bin/restore train --method wgan --out $(WGAN_RUN) $(if $(WGAN_INIT),--init $(WGAN_INIT)) --size 64 --batch-size $(WGAN_BATCH) --iters $(WGAN_ITERS) --warmup 0 --bf16 on $(if $(WGAN_INIT),,$(WGAN_SET)) $(WGAN_TRAIN_FLAGS); \
	fi

# DeepGIN (resumable; without a run folder, a new run starts from $(DEEPGIN_INIT) when that file
# exists, with DEEPGIN_INIT_SET, else from scratch with DEEPGIN_SET): width 26 (the widest
# generator a 16 MB float16 file holds, 7.09 M parameters), the push-pull prefill with residual
# outputs that start at zero (the defaults: see the README's DeepGIN section), 128² crops at
# batch 4 (a step about 0.45 s on one thread without the discriminators, 0.8 s with them: 4x
# cheaper than 256²; the network works at any size), L1 over the hole alone (known_weight 0),
# no perceptual or style loss (they need ImageNet VGG-19 weights: add --vgg-weights PATH and
# drop those two --set items where you have them) and therefore the adversarial term at 0.1,
# not the paper's 0.001: without the VGG terms 0.001 leaves it 0.15 % of the generator's update
# (benchmarks/loss_balance.py), 0.1 about 8 %. The shipped file is runs/deepgin-adv: the
# warm-up's run (runs/deepgin-g, squared errors) continued with the discriminators.
# Then: python -m restore.training.ship $(DEEPGIN_RUN)/last.pt restore/weights/deepgin.pt
DEEPGIN_RUN ?= runs/deepgin-adv
DEEPGIN_INIT ?= $(wildcard restore/weights/deepgin.pt)
DEEPGIN_ITERS ?= 40000
DEEPGIN_SIZE ?= 128
DEEPGIN_BATCH ?= 4
DEEPGIN_SET ?= --set width=26 --set perceptual_weight=0 --set style_weight=0 --set adversarial_weight=0.1
DEEPGIN_INIT_SET ?= --set warmup_steps=0 --set pixel_loss=l1 --set adversarial_weight=0.1
DEEPGIN_TRAIN_FLAGS ?= --data ../shared/data/train --checkpoint-every 100 --keep-every 2000 --sample-every 1000 --eval-every 500
train-deepgin: export OMP_WAIT_POLICY := $(OMP_WAIT_POLICY)
train-deepgin: venv
	if [ -f $(DEEPGIN_RUN)/last.pt ]; then \
	  $(VENV)/bin/restore train --method deepgin --out $(DEEPGIN_RUN) --resume --iters $(DEEPGIN_ITERS) $(DEEPGIN_TRAIN_FLAGS); \
	else \
	  $(VENV)/bin/restore train --method deepgin --out $(DEEPGIN_RUN) $(if $(DEEPGIN_INIT),--init $(DEEPGIN_INIT) $(DEEPGIN_INIT_SET),$(DEEPGIN_SET)) --size $(DEEPGIN_SIZE) --batch-size $(DEEPGIN_BATCH) --iters $(DEEPGIN_ITERS) --warmup 100 --bf16 on $(DEEPGIN_TRAIN_FLAGS); \
	fi

build: venv
	$(PY) setup.py build_ext --inplace

lint: venv
	$(VENV)/bin/ruff check restore tests benchmarks

clean:
	rm -rf build demo-out *.egg-info restore/_C*.so
