"""The Python package eirnn against the eirnn CLI (same engine, same files), numpy, torch, and its
behaviour as a Python library (errors, Ctrl-C, GIL, memory). Run by ctest (label python) in the
virtual environment tools/python-venv makes: EIRNN_BINARY is the CLI, EIRNN_SHARED_DIR the test
data (Keras models; those tests skip without it)."""

import csv
import io
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest

import eirnn

CLI = os.environ.get("EIRNN_BINARY", "")
SHARED = os.environ.get("EIRNN_SHARED_DIR", "")
needs_cli = pytest.mark.skipif(not os.path.exists(CLI), reason="EIRNN_BINARY (the eirnn CLI) not set")

# A small, fast group: 3 networks of 12 units, 2 epochs of 200 trials.
SMALL = dict(task="and", units=12, networks=3, epochs=2, trials=220, test_trials=20, batch=32,
             seed=5, data_seed=3, threads=2, backend="cpu", lr=1e-3)


def flags(settings):
    out = []
    for k, v in settings.items():
        flag = "--" + k.replace("_", "-")
        if v is True:
            out.append(flag)
        elif v is not False and v is not None:
            out += [flag, str(v)]
    return out


def cli(*args, check=True):
    p = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"eirnn {' '.join(map(str, args))}: {p.stderr}")
    return p


def cli_error(*args):
    """The one-line message of a CLI that refuses its arguments (exit 2), without 'eirnn: '."""
    p = cli(*args, check=False)
    assert p.returncode == 2, p.stderr
    line = p.stderr.strip().splitlines()[-1]
    assert line.startswith("eirnn: ")
    return line[len("eirnn: "):]


def assert_same_tree(a, b, where=""):
    """Equal datasets, dtypes and shapes (NaN equal to NaN); 'attrs' entries are skipped."""
    assert set(a) == set(b), f"{where}: {sorted(set(a) ^ set(b))}"
    for k in a:
        if k == "attrs":
            continue
        if isinstance(a[k], dict):
            assert_same_tree(a[k], b[k], f"{where}/{k}")
        else:
            x, y = np.asarray(a[k]), np.asarray(b[k])
            assert x.dtype == y.dtype, f"{where}/{k}: {x.dtype} vs {y.dtype}"
            assert x.shape == y.shape, f"{where}/{k}: {x.shape} vs {y.shape}"
            assert np.array_equal(x, y, equal_nan=True), f"{where}/{k} differs"


def result_tree(r):
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in r.items()}


@pytest.fixture(scope="module")
def small():
    return eirnn.train(**SMALL)


# ---- installation ----

def test_installed_package_with_stubs():
    pkg = os.path.dirname(eirnn.__file__)
    assert "site-packages" in pkg, pkg  # the installed wheel, not the source tree
    assert os.path.exists(os.path.join(pkg, "_core.pyi"))
    assert os.path.exists(os.path.join(pkg, "py.typed"))
    stub = open(os.path.join(pkg, "_core.pyi")).read()
    for name in ("def train(", "def spectrum(", "def trials(", "def forward("):
        assert name in stub


@needs_cli
def test_version_matches_cli():
    assert cli("--version").stdout.strip() == eirnn.__version__


# ---- OpenBLAS kernels: the module loads the ones the CLI runs on ----

def test_openblas_choice_is_the_engines():
    from eirnn import _openblas
    names = sorted(_openblas.BEFORE_AVX2) + ["Prescott", "SANDYBRIDGE", "Haswell", "Zen",
                                             "SkylakeX", "Cooperlake", "SapphireRapids", ""]
    for name in names:
        for avx512 in (False, True):
            for avx2_fma in (False, True):
                assert _openblas.better_core(name, avx512, avx2_fma) == \
                    eirnn._core._better_openblas_core(name, avx512, avx2_fma), (name, avx512, avx2_fma)
    assert _openblas.better_core("Prescott", True, True) == "SkylakeX"


def _cores_loaded(err):
    return [line[len("Core: "):] for line in err.splitlines() if line.startswith("Core: ")]


@needs_cli
@pytest.mark.parametrize("coretype", [None, "Prescott"])
def test_module_loads_the_openblas_kernels_of_the_cli(coretype):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    env["OPENBLAS_VERBOSE"] = "2"
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    ran = subprocess.run([CLI, "--version"], env=env, capture_output=True, text=True,
                         check=True)
    imported = subprocess.run(
        [sys.executable, "-c", "import os, eirnn; print(os.environ.get('OPENBLAS_CORETYPE'))"],
        env=env, capture_output=True, text=True, check=True)
    # Processes started after the import choose for their own CPU; a variable the user set stays.
    assert imported.stdout.strip() == str(coretype), imported.stdout
    cli_cores, module_cores = _cores_loaded(ran.stderr), _cores_loaded(imported.stderr)
    # numpy's own OpenBLAS (imported first) may print a line too; the engine's library loads last.
    assert cli_cores and module_cores, (ran.stderr, imported.stderr)
    assert module_cores[-1] == cli_cores[-1], (ran.stderr, imported.stderr)
    if coretype:
        assert cli_cores == [coretype] and module_cores[-1] == coretype  # the user's choice stands


# ---- parity with the CLI ----

@needs_cli
def test_train_matches_cli_bit_for_bit(small, tmp_path):
    cli_file = tmp_path / "cli.h5"
    cli("train", *flags(SMALL), "--out", cli_file, "--quiet")
    py_file = tmp_path / "py.h5"
    small.save(py_file)
    from_cli = eirnn.load(cli_file)[0]
    from_py = eirnn.load(py_file)[0]
    assert_same_tree(result_tree(from_cli), result_tree(from_py))
    # The in-memory result is the file's content too.
    assert_same_tree(result_tree(from_cli), result_tree(small))
    assert from_cli.config == small.config
    assert from_cli.attrs["eig_method"] == small.attrs["eig_method"]
    assert small.W_rec.shape == (3, 12, 12) and small.eig.dtype == np.complex128
    assert small.eig.shape == (3, 12) and small.metrics["r_outer"].shape == (3,)
    assert small.loss.shape == (3, 2) and small.seed.tolist() == [5, 6, 7]


@needs_cli
def test_train_out_writes_the_cli_file(tmp_path):
    kw = dict(SMALL, networks=2, no_spectra=True)
    eirnn.train(**kw, out=tmp_path / "py.h5")
    cli("train", *flags(kw), "--out", tmp_path / "cli.h5", "--quiet")
    a, b = eirnn.load(tmp_path / "py.h5")[0], eirnn.load(tmp_path / "cli.h5")[0]
    assert_same_tree(result_tree(a), result_tree(b))
    assert "eig" not in a


def test_config_object_equals_keywords(small):
    cfg = eirnn.Config(**SMALL)
    r = eirnn.train(cfg)
    assert_same_tree(result_tree(r), result_tree(small))
    assert cfg.as_dict() == small.config
    assert cfg.replace(units=20).as_dict()["model"]["units"] == 20
    names = [o[0] for o in eirnn.Config.options()]
    for name in ("units", "e_frac", "dale_axis", "no_spectra", "eig_method", "first_in"):
        assert name in names


@needs_cli
def test_spectrum_batch_matches_cli_and_numpy(small, tmp_path):
    path = tmp_path / "r.h5"
    small.save(path)
    W = small.W_rec.astype(np.float64)
    spec = eirnn.spectrum(W)
    out = cli("spectrum", "--h5", f"{path}:groups/g0000/W_rec", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == W.shape[0]
    for name, col in spec.metrics.items():
        ref = np.array([float(r[name]) for r in rows])
        assert np.allclose(col, ref, rtol=1e-10, atol=0, equal_nan=True), name
    for k in range(W.shape[0]):
        ref = np.linalg.eigvals(W[k])
        ref = ref[np.lexsort((-ref.imag, -ref.real, -np.abs(ref)))]
        got = spec.eig[k]
        assert np.allclose(np.sort_complex(got), np.sort_complex(ref), rtol=1e-10, atol=1e-12)
        assert np.all(np.diff(np.abs(got)) <= 1e-12)  # descending modulus
    # The trained stage's metrics of the file are the same numbers.
    for name in ("rho", "r_outer", "r_inner", "henrici"):
        assert np.allclose(spec.metrics[name], small.metrics[name], rtol=1e-10, atol=0)


def test_spectrum_dtypes_orders_and_single_matrix():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((4, 30, 30)) / np.sqrt(30)
    ref = eirnn.spectrum(W)
    f_order = eirnn.spectrum(np.asfortranarray(W))
    assert np.array_equal(ref.eig, f_order.eig)
    f32 = eirnn.spectrum(W.astype(np.float32))
    assert np.allclose(f32.eig, eirnn.spectrum(W.astype(np.float32).astype(np.float64)).eig, rtol=0, atol=0)
    one = eirnn.spectrum(W[2])
    assert one.eig.shape == (30,) and np.array_equal(one.eig, ref.eig[2])
    assert float(one.metrics["rho"]) == ref.metrics["rho"][2]
    # An orthogonal matrix: every |lambda| = 1.
    q, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    assert np.allclose(np.abs(eirnn.spectrum(q).eig), 1.0, atol=1e-12)


def test_spectrum_reads_c_float64_in_place():
    n = 700
    W = np.random.default_rng(1).standard_normal((1, n, n))
    size = W.nbytes
    tracemalloc.start()
    eirnn.spectrum(W)
    _, peak_c = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tracemalloc.start()
    eirnn.spectrum(np.asfortranarray(W))  # needs a C copy: the check below can fail
    _, peak_f = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak_c < size / 4, (peak_c, size)
    assert peak_f >= size, (peak_f, size)


def nse_numpy(sv):
    """Normalised SVD entropy (Li et al. 2023) of singular values along the last axis."""
    p = sv / sv.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=-1) / np.log(sv.shape[-1])


def assert_singular_values(got, w):
    """got (K,N) float64 = numpy's singular values of w (K,N,N) in float64 within 1e-10 relative."""
    ref = np.linalg.svd(w.astype(np.float64), compute_uv=False)
    assert got.dtype == np.float64 and got.shape == ref.shape
    assert np.all(np.diff(got, axis=1) <= 0)  # descending
    assert np.max(np.abs(got - ref) / ref) <= 1e-10


@pytest.mark.parametrize("init", ["orthogonal", "normal"])
def test_singular_values_and_nse_match_numpy(small, init, tmp_path):
    trained = small if init == "orthogonal" else eirnn.train(**dict(SMALL, init=init))
    path = tmp_path / "r.h5"
    trained.save(path)
    r = eirnn.load(path)[0]
    model = r.config["model"]
    assert model["init"] == init and model["dale"] == "project"
    assert model["dale_axis"] == "outgoing" and not model["project_init"]
    w0 = r.W_rec_initial.astype(np.float64)
    projected = np.where(w0 * r.sign[:, None, :].astype(np.float64) < 0, 0.0, w0)
    for sv, w, metrics in (("sv_initial", w0, "metrics_initial"),
                           ("sv_projected", projected, "metrics_projected"),
                           ("sv", r.W_rec, "metrics")):
        got = r[sv]
        assert_singular_values(got, w)
        m = r[metrics]
        assert np.array_equal(m["sv_max"], got[:, 0]) and np.array_equal(m["sv_min"], got[:, -1])
        assert np.allclose(m["nse"], nse_numpy(got), rtol=1e-12, atol=0), sv
        assert np.all((m["nse"] > 0.5) & (m["nse"] <= 1 + 1e-12)), (sv, m["nse"])
        assert np.array_equal(trained[sv], got)  # the in-memory result holds the same values
    assert not np.array_equal(r.sv_initial, r.sv)
    assert not np.array_equal(r.sv_initial, r.sv_projected)
    # An orthogonal matrix has NSE 1 (here rounded to float32); a Gaussian one less.
    nse0 = r.metrics_initial["nse"]
    if init == "orthogonal":
        assert np.all(np.abs(nse0 - 1) <= 1e-10), nse0
    else:
        assert np.all(nse0 < 0.99), nse0


def test_spectrum_singular_values_and_nse():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((3, 25, 25)) / 5
    spec = eirnn.spectrum(W)
    assert_singular_values(spec.sv, W)
    assert np.allclose(spec.metrics["nse"], nse_numpy(spec.sv), rtol=1e-12, atol=0)
    one = eirnn.spectrum(W[1])
    assert one.sv.shape == (25,) and np.array_equal(one.sv, spec.sv[1])
    # Orthogonal: NSE 1; rank 1: NSE 0.
    q, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    assert abs(float(eirnn.spectrum(q).metrics["nse"]) - 1.0) <= 1e-12
    u, v = rng.standard_normal(40), rng.standard_normal(40)
    assert abs(float(eirnn.spectrum(np.outer(u, v)).metrics["nse"])) <= 1e-12


@needs_cli
def test_trials_match_data_file(tmp_path):
    for task, extra in (("xor", {}), ("ff", {"ff_pulses": 3}), ("context_dm", {"dm_stim": 30})):
        path = tmp_path / f"{task}.h5"
        cli("data", "--task", task, "--trials", 40, "--data-seed", 9, *flags(extra), "--out", path)
        x, y, mask, info = eirnn.trials(task, 40, seed=9, **extra)
        assert len(eirnn.load(path)) == 0  # a data file: no groups
        raw = eirnn._core.load_file(str(path))
        for name, arr in (("x", x), ("y", y), ("mask", mask)):
            assert arr.dtype == np.float32
            assert np.array_equal(arr, raw[name]), (task, name)
        assert np.array_equal(info["type"], raw["type"]) and np.array_equal(info["delay"], raw["delay"])
        assert x.shape == (40, info["T"], info["I"]) and y.shape == (40, info["T"], info["O"])


def test_trials_are_the_training_set(small):
    # The example trials of a result are held-out trials of its data set.
    x, y, _, _ = eirnn.trials("and", SMALL["trials"], seed=SMALL["data_seed"])
    n_train = SMALL["trials"] - SMALL["test_trials"]
    S = small.examples["x"].shape[0]
    assert np.array_equal(small.examples["x"], x[n_train:n_train + S])
    assert np.array_equal(small.examples["y"], y[n_train:n_train + S])


def test_forward_reproduces_the_engine_examples(small):
    k = small.attrs["example_network"]
    states, outputs = eirnn.forward(small, small.examples["x"])
    assert states.shape == (3,) + small.examples["h"].shape
    assert np.allclose(states[k], small.examples["h"], rtol=1e-5, atol=1e-6)
    assert np.allclose(outputs[k], small.examples["output"], rtol=1e-5, atol=1e-6)
    # One network, one trial, a dict.
    one = {n: small[n][k] for n in ("W_rec", "W_in", "b", "W_out", "b_out")}
    s1, o1 = eirnn.forward(one, small.examples["x"][0])
    assert s1.shape == small.examples["h"][0].shape
    assert np.allclose(s1, states[k, 0], rtol=1e-5, atol=1e-6)
    assert np.allclose(o1, outputs[k, 0], rtol=1e-5, atol=1e-6)


def test_save_load_round_trip(small, tmp_path):
    path = tmp_path / "r.h5"
    small.save(path)
    back = eirnn.load(path)
    assert len(back) == 1 and list(back) == ["g0000"]
    assert back.attrs["format"] == "eirnn-results"
    assert_same_tree(result_tree(small), result_tree(back[0]))
    assert back[0].config == small.config
    with pytest.raises(FileExistsError, match="exists"):
        small.save(path)
    small.save(path, overwrite=True)


def test_to_torch_matches_forward(small):
    torch = pytest.importorskip("torch", reason="torch is not installed in this environment")
    k = 1
    d = eirnn.to_torch(small, network=k)
    assert np.shares_memory(d["weight_hh_l0"].numpy(), small.W_rec)  # DLPack, no copy
    N, I = small.W_in.shape[1], small.W_in.shape[2]
    rnn = torch.nn.RNN(I, N, batch_first=True)
    rnn.load_state_dict({n: v for n, v in d.items() if n.endswith("_l0")})
    x = small.examples["x"]
    with torch.no_grad():
        h, _ = rnn(torch.from_numpy(np.ascontiguousarray(x)))
        y = h @ d["weight_out"].T + d["bias_out"]
    states, outputs = eirnn.forward(small, x)
    assert np.allclose(h.numpy(), states[k], rtol=1e-5, atol=1e-5)
    assert np.allclose(y.numpy(), outputs[k], rtol=1e-5, atol=1e-5)
    stacked = eirnn.to_torch(small)
    assert tuple(stacked["weight_hh_l0"].shape) == small.W_rec.shape


def test_to_jax_matches_arrays(small):
    pytest.importorskip("jax", reason="jax is not installed in this environment")
    d = eirnn.to_jax(small, network=0)
    assert np.array_equal(np.asarray(d["weight_hh_l0"]), small.W_rec[0])


@pytest.mark.skipif(not SHARED or not os.path.isdir(os.path.join(SHARED, "data", "keras-models")),
                    reason="the Keras test models (EIRNN_SHARED_DIR) are not here")
@needs_cli
def test_keras_load_matches_cli():
    path = os.path.join(SHARED, "data", "keras-models", "dm_orthogonal_bias_final.hdf5")
    m = eirnn.keras.load(path)
    assert len(m.layers) >= 1
    W = m.layers[0]["W_rec"]
    assert W.dtype == np.float64 and W.shape == (m.layers[0]["N"],) * 2
    rows = list(csv.DictReader(io.StringIO(cli("spectrum", "--keras", path, "--format", "csv").stdout)))
    spec = eirnn.spectrum(W)
    for name in ("rho", "r_outer", "henrici", "lam_sym_max"):
        assert np.isclose(float(spec.metrics[name]), float(rows[0][name]), rtol=1e-10, atol=0)


# ---- sweeps ----

def tiny_design(output, axes):
    """A sweep of 10-unit networks trained for one short epoch, two per cell."""
    return {
        "output": str(output),
        "backend": "cpu",
        "threads": 2,
        "networks_per_cell": 2,
        "model": {"units": 10},
        "train": {"epochs": 1, "trials": 120, "test_trials": 10, "batch": 32},
        "axes": axes,
    }


def test_sweep_dict_dry_run_and_run(tmp_path):
    design = tiny_design(tmp_path / "s.h5", {"task": ["and"], "e_frac": [0.5, 0.7]})
    plan = eirnn.sweep(design, dry_run=True)
    assert len(plan["cells"]) == 2 and not os.path.exists(design["output"])
    summary = eirnn.sweep(design)
    assert summary["cells"] == 2 and summary["networks"] == 4
    res = eirnn.load(summary["output"])
    assert len(res) == 2 and res[1].config["model"]["e_frac"] == 0.7
    again = eirnn.sweep(design)
    assert again["already_complete"]


def test_sweep_dict_with_two_grids(tmp_path):
    design = tiny_design(tmp_path / "g.h5", [{"dale": ["project", "none"]}, {"dale_axis": ["incoming"]}])
    plan = eirnn.sweep(design, dry_run=True)
    assert [c["grid"] for c in plan["cells"]] == [0, 0, 1]
    assert plan["cells"][2]["label"] == "dale_axis=incoming"
    summary = eirnn.sweep(design)
    assert summary["cells"] == 3 and summary["networks"] == 6
    res = eirnn.load(summary["output"])
    assert len(res) == 3
    assert res[2].config["model"]["dale_axis"] == "incoming"
    assert res[2].config["model"]["dale"] == "project"
    assert res[1].config["model"]["dale"] == "none" and res[1].config["model"]["dale_axis"] == "outgoing"


# ---- errors: the documented type, the CLI's message ----

@needs_cli
@pytest.mark.parametrize("settings", [
    {"units": 1},
    {"e_frac": 1.5},
    {"init": "uniform"},
    {"dale": "soft"},
    {"units": "many"},
    {"task": "nand"},
    {"eig_method": "qr"},
    {"lr": "fast"},
    {"clip": "both"},
])
def test_bad_settings_raise_valueerror_with_cli_message(settings, tmp_path):
    msg = cli_error("train", *flags(settings), "--out", tmp_path / "x.h5", "--quiet")
    with pytest.raises(ValueError) as err:
        eirnn.train(**settings)
    assert str(err.value) == msg
    with pytest.raises(ValueError):
        eirnn.Config(**settings)


def test_type_errors():
    with pytest.raises(TypeError, match="unexpected keyword argument 'unit'"):
        eirnn.train(unit=10)
    with pytest.raises(TypeError, match="unexpected keyword argument 'N'"):
        eirnn.train(N=10)
    with pytest.raises(TypeError, match="project_init: expected True or False"):
        eirnn.train(project_init=1)
    with pytest.raises(TypeError, match="units: expected a number or a string"):
        eirnn.train(units=[1, 2])
    with pytest.raises(TypeError, match="float array"):
        eirnn.spectrum(np.eye(3, dtype=np.int64))
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        eirnn.trials("and", 10, colour=1)
    with pytest.raises(TypeError):
        eirnn.forward(42, np.zeros((1, 2, 2)))


def test_value_errors():
    with pytest.raises(ValueError, match="square"):
        eirnn.spectrum(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="--outliers"):
        eirnn.spectrum(np.eye(3), outliers=-1)
    with pytest.raises(ValueError, match="--eig-method: unknown value 'fast'"):
        eirnn.spectrum(np.eye(3), method="fast")
    with pytest.raises(ValueError, match="--backend: unknown value 'tpu'"):
        eirnn.spectrum(np.eye(3), backend="tpu")
    with pytest.raises(ValueError, match="--trials: must be >= 1"):
        eirnn.trials("and", 0)
    with pytest.raises(ValueError, match="--task: unknown value 'nand'"):
        eirnn.trials("nand", 10)
    with pytest.raises(ValueError, match="x: "):
        eirnn.forward({"W_rec": np.eye(3), "W_in": np.ones((3, 2)), "b": np.zeros(3),
                       "W_out": np.ones((1, 3)), "b_out": np.zeros(1)}, np.zeros((5, 4, 3)))


@needs_cli
def test_file_errors(tmp_path):
    missing = tmp_path / "none.h5"
    with pytest.raises(FileNotFoundError) as err:
        eirnn.load(missing)
    assert str(missing) in str(err.value)
    with pytest.raises(FileNotFoundError):
        eirnn.keras.load(missing)
    with pytest.raises(FileNotFoundError):
        eirnn.sweep(tmp_path / "none.toml")
    with pytest.raises(FileNotFoundError) as err:
        eirnn.train(**SMALL, out=tmp_path / "no" / "dir" / "r.h5")
    msg = cli_error("train", *flags(SMALL), "--out", tmp_path / "no" / "dir" / "r.h5")
    assert str(err.value) == msg
    not_hdf5 = tmp_path / "text.h5"
    not_hdf5.write_text("not hdf5")
    with pytest.raises(ValueError) as err:
        eirnn.load(not_hdf5)
    assert str(not_hdf5) in str(err.value)
    existing = tmp_path / "exists.h5"
    existing.write_text("")
    with pytest.raises(FileExistsError) as err:
        eirnn.train(**SMALL, out=existing)
    assert str(err.value) == cli_error("train", *flags(SMALL), "--out", existing)



HOSTILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fuzz", "keras")


@pytest.mark.parametrize("name", ["regress-hdf5-vlen-global-heap-overflow",
                                  "regress-hdf5-vlen-global-heap-hang"])
def test_files_that_crash_libhdf5_raise_valueerror(name, tmp_path, monkeypatch):
    """libhdf5 itself crashes or loops on these files: the readers check them in a child process."""
    path = tmp_path / (name + ".h5")
    with open(os.path.join(HOSTILE, name), "rb") as src:
        path.write_bytes(src.read())
    monkeypatch.setenv("EIRNN_H5_CHECK_TIMEOUT", "3")
    for read in (eirnn.keras.load, eirnn.load):
        start = time.monotonic()
        with pytest.raises(ValueError) as err:
            read(path)
        assert str(path) in str(err.value) and "corrupt HDF5 file" in str(err.value)
        assert "\n" not in str(err.value)
        assert time.monotonic() - start < 30


# ---- behaviour as a Python library ----

LONG = dict(task="and", units=64, networks=4, epochs=200, trials=4000, test_trials=50, threads=2,
            backend="cpu")


def test_ctrl_c_stops_training_within_2s_and_writes_nothing(tmp_path):
    out = tmp_path / "never.h5"
    main = threading.main_thread().ident
    sent = []

    def interrupt():
        time.sleep(1.5)
        sent.append(time.monotonic())
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        eirnn.train(**LONG, out=out)
    stopped = time.monotonic()
    assert sent, "the training ended before the interrupt"
    assert stopped - sent[0] < 2.0, stopped - sent[0]
    assert stopped - t0 < 10
    assert not out.exists() and os.listdir(tmp_path) == []


def test_gil_is_released_while_training():
    count = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            count[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        t0 = time.monotonic()
        eirnn.train(**dict(LONG, epochs=1))  # about 1 s on 2 cores: long enough to count on
        dt = time.monotonic() - t0
        at_end = count[0]
    finally:
        stop.set()
        t.join()
    # Spinning alone does millions of increments a second; with the GIL held by the training it
    # would get only the interpreter's switch points of the 50 ms wait loop.
    assert dt > 0.3 and at_end > 100_000 * dt, (at_end, dt)


def test_progress_callback_and_silence(capfd):
    seen = []
    eirnn.train(**SMALL, progress=lambda u, loss: seen.append((u, loss.copy())))
    assert seen and all(isinstance(u, int) for u, _ in seen)
    updates = [u for u, _ in seen]
    assert updates == sorted(updates) and updates[-1] == 3 * 2 * 7  # K * epochs * batches
    assert seen[-1][1].shape == (3,) and np.all(np.isfinite(seen[-1][1]))
    eirnn.train(**SMALL)
    out, err = capfd.readouterr()
    assert out == "" and err == ""

    def fail(u, loss):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        eirnn.train(**dict(LONG, epochs=2), progress=fail)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_no_memory_growth_over_50_trainings():
    kw = dict(SMALL, units=32, networks=4, epochs=1, trials=200)
    for _ in range(10):
        r = eirnn.train(**kw)
        _ = r.W_rec.sum() + r.eig.real.sum()
        del r
    before = rss_bytes()
    for _ in range(40):
        r = eirnn.train(**kw)
        _ = r.W_rec.sum() + r.eig.real.sum()
        del r
    after = rss_bytes()
    assert after <= before * 1.10, (before, after)
