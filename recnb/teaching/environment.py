"""What this machine gives the series: package versions, the training device, mixed precision, data.

Notebook 00 calls :func:`environment_report` once, so a learner (and anyone
helping them) sees in one table what their runs will use: versions, the
device (``cuda``, ``mps`` or ``cpu``), which autocast dtypes really work on
it (tried, not looked up), and where the data is.

:func:`check_widgets` is the first thing to run when JupyterLab shows
"Error displaying widget: model not found".
"""

from __future__ import annotations

import os
import platform
import warnings
from importlib import metadata

import pandas as pd
import torch

from recnb import __version__
from recnb.config import DATA_DIR_ENV, display_path, resolve_data_dir
from recnb.models.devices import autocast_dtype, choose_device

#: Packages whose versions the report lists, in this order (``recnb`` and ``torch`` come first).
REPORTED_PACKAGES = ("numpy", "pandas", "matplotlib", "seaborn", "ipywidgets", "jupyterlab")

#: ipywidgets major version -> the jupyterlab_widgets major version that ships its front end.
WIDGETS_FRONTEND = {7: 1, 8: 3}


def package_version(name: str) -> str:
    """The installed version of a distribution, or ``"not installed"``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def training_device() -> torch.device:
    """The device training uses by default (:func:`~recnb.models.devices.choose_device`): CUDA, else MPS, else CPU."""
    return choose_device("auto")


def describe_device(device: torch.device) -> str:
    """A readable name: the GPU's name, "Apple MPS", or "CPU, n cores"."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS (Metal)"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"CPU, {cores} cores ({platform.machine() or 'unknown architecture'})"


def autocast_works(device_type: str, dtype: torch.dtype) -> bool:
    """Whether a tiny matmul under ``torch.autocast(device_type, dtype)`` really runs in ``dtype``.

    Trying is more reliable than reading version tables: it fails the same way
    training would (an error, or a silent fall-back to float32).
    """
    try:
        a = torch.ones(8, 8, device=device_type)
        with warnings.catch_warnings():  # an unsupported dtype warns and falls back to float32
            warnings.simplefilter("ignore", UserWarning)
            with torch.autocast(device_type, dtype=dtype):
                product = a @ a
        return product.dtype == dtype and bool(torch.isfinite(product).all())
    except (RuntimeError, TypeError, ValueError, AssertionError):
        return False


def mixed_precision_support(device: torch.device) -> dict[str, tuple[bool, str]]:
    """Which autocast dtypes work on ``device``: ``{"fp16 autocast": (ok, note), "bf16 autocast": ...}``."""
    kind = device.type
    if kind == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        return {
            "fp16 autocast": (autocast_works("cuda", torch.float16),
                              "tested: matmul under torch.autocast('cuda', float16); pair it with a GradScaler"),
            "bf16 autocast": (bf16, "torch.cuda.is_bf16_supported() (native on Ampere and newer)"),
        }
    if kind == "mps":
        return {
            "fp16 autocast": (autocast_works("mps", torch.float16),
                              "tested: matmul under torch.autocast('mps', float16)"),
            "bf16 autocast": (autocast_works("mps", torch.bfloat16),
                              "tested: matmul under torch.autocast('mps', bfloat16)"),
        }
    bf16 = autocast_works("cpu", torch.bfloat16)
    return {
        "fp16 autocast": (autocast_works("cpu", torch.float16),
                          "tested; on the CPU the series uses bf16 instead (no GradScaler needed)"),
        "bf16 autocast": (bf16, "tested: matmul under torch.autocast('cpu', bfloat16) "
                                + ("returned bfloat16" if bf16 else "did not return bfloat16")),
    }


def ml1m_status(data_dir=None) -> tuple[bool, str]:
    """Whether ML-1M is in the data folder already, and in which form.

    The folder is named as :func:`recnb.config.display_path` prints it (``<data>/ml-1m``
    or ``data/ml-1m``), so the report can be pasted anywhere without naming this machine.
    """
    folder = resolve_data_dir(data_dir) / "ml-1m"
    shown = display_path(folder, data_dir)
    if (folder / "ratings.dat").is_file():
        return True, f"{shown}: ratings.dat (ratings and timestamps)"
    if (folder / "sequences.txt").is_file():
        return True, f"{shown}: sequences.txt (rating order only, no ratings or timestamps)"
    if (folder.parent / "ml-1m.zip").is_file():
        return False, "ml-1m.zip is there; load_dataset('ml-1m') extracts it"
    return False, "not yet: load_dataset('ml-1m') downloads it from GroupLens (about 6 MB)"


def environment_report(data_dir=None) -> pd.DataFrame:
    """One table of what this machine gives the series: versions, device, mixed precision and data.

    Returns
    -------
    DataFrame
        Indexed by ``check`` (``"Python"``, ``"recnb"``, ``"torch"``, ..., ``"device"``,
        ``"device name"``, ``"fp16 autocast"``, ``"bf16 autocast"``, ``"training autocast dtype"``,
        ``"data folder"``, ``"ML-1M present"``) with a ``value`` column and a ``note`` column.
        ``value`` of ``"device"`` is ``"cuda"``, ``"mps"`` or ``"cpu"``; the fp16/bf16
        autocast rows and the ML-1M row hold booleans. Paths are shown as
        :func:`recnb.config.display_path` prints them: ``data`` for the repository's
        folder, ``<data>`` for one set by ``RECNB_DATA_DIR`` or ``data_dir``.
    """
    import matplotlib
    import numpy
    import seaborn

    imported = {"numpy": numpy.__version__, "pandas": pd.__version__,
                "matplotlib": matplotlib.__version__, "seaborn": seaborn.__version__}
    rows = [
        ("Python", platform.python_version(), platform.python_implementation()),
        ("recnb", __version__, ""),
        ("torch", torch.__version__, f"CUDA build {torch.version.cuda}" if torch.version.cuda else "CPU build"),
    ]
    rows += [(name, imported.get(name) or package_version(name), "") for name in REPORTED_PACKAGES]

    device = training_device()
    rows.append(("device", device.type, "what the training notebooks will use"))
    rows.append(("device name", describe_device(device), ""))
    rows += [(check, ok, note) for check, (ok, note) in mixed_precision_support(device).items()]
    rows.append(("training autocast dtype", str(autocast_dtype(device)).replace("torch.", ""),
                 "what recnb.models.training uses with mixed precision on this device"))

    present, where = ml1m_status(data_dir)
    if data_dir is not None:
        source = "given as data_dir (shown as <data>)"
    elif os.environ.get(DATA_DIR_ENV):
        source = f"from {DATA_DIR_ENV} (shown as <data>)"
    else:
        source = f"the default; set {DATA_DIR_ENV} to move it"
    rows.append(("data folder", display_path(resolve_data_dir(data_dir), data_dir), source))
    rows.append(("ML-1M present", present, where))
    return pd.DataFrame(rows, columns=["check", "value", "note"]).set_index("check")


def check_widgets() -> dict:
    """Versions of the widget packages, and whether they fit together.

    "Error displaying widget: model not found" in JupyterLab almost always means
    the kernel's ``ipywidgets`` and the browser side (``jupyterlab_widgets``,
    installed into the environment that runs ``jupyter lab``) do not match:
    ipywidgets 8 needs jupyterlab_widgets 3, ipywidgets 7 needs jupyterlab_widgets 1.

    Returns
    -------
    dict
        ``ipywidgets``, ``jupyterlab_widgets``, ``widgetsnbextension``, ``jupyterlab``
        (version strings or ``"not installed"``), ``ok`` (bool) and ``advice`` (str).
    """
    versions = {name: package_version(name)
                for name in ("ipywidgets", "jupyterlab_widgets", "widgetsnbextension", "jupyterlab")}
    fix = ('pip install -U "ipywidgets>=8.1" "jupyterlab_widgets>=3" in the environment that runs '
           "jupyter lab, then restart JupyterLab and reload the browser tab")
    if versions["ipywidgets"] == "not installed":
        ok, advice = False, f"ipywidgets is missing: {fix}."
    elif versions["jupyterlab_widgets"] == "not installed":
        ok, advice = False, f"jupyterlab_widgets (the JupyterLab side of the widgets) is missing: {fix}."
    else:
        major = int(versions["ipywidgets"].split(".")[0])
        wanted = WIDGETS_FRONTEND.get(major)
        have = int(versions["jupyterlab_widgets"].split(".")[0])
        ok = wanted == have
        advice = ("ipywidgets and jupyterlab_widgets match. If a widget still shows 'model not found', "
                  "JupyterLab may be running from another environment: restart it from this one."
                  if ok else
                  f"ipywidgets {versions['ipywidgets']} needs jupyterlab_widgets {wanted}.x, "
                  f"found {versions['jupyterlab_widgets']}: {fix}.")
    return {**versions, "ok": ok, "advice": advice}
