"""examples/jupyter/quickstart.ipynb runs headless (nbclient + ipykernel) and produces its outputs."""
import base64
import json
import os
import sys

import nbformat
from nbclient import NotebookClient

from conftest import ROOT

NB = ROOT / "examples" / "jupyter" / "quickstart.ipynb"


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    # a kernelspec for this very interpreter (Debian's python3 with numpy and friends), in a private JUPYTER_PATH
    spec = tmp_path / "jupyter" / "kernels" / "maliang-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "maliang test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("PYTHONPATH", raising=False)  # the first cell finds the package relative to the notebook
    nb = nbformat.read(NB, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="maliang-test",
                            resources={"metadata": {"path": str(NB.parent)}})
    client.execute()
    outputs = "\n".join(o.get("text", "") or json.dumps(o.get("data", {})) for c in nb.cells if c.cell_type == "code"
                        for o in c.get("outputs", []))
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert "localizations, recall" in outputs
    assert "library" in outputs and "libmaliang" in outputs
    import re
    png = re.search(r"saved (\S+quickstart\.png)", outputs).group(1)
    assert os.path.getsize(png) > 1000
    # the figure shows inline too (Jupyter's image/png display data), not only in the saved file: a user who opens the
    # notebook sees it. MPLBACKEND=Agg above stands for a headless default the notebook must override.
    shown = [base64.b64decode(o["data"]["image/png"]) for c in nb.cells if c.cell_type == "code"
             for o in c.get("outputs", []) if o.output_type in ("display_data", "execute_result")
             and "image/png" in o.get("data", {})]
    assert len(shown) >= 1, "no inline figure (image/png output) in the executed notebook"
    assert all(p[:8] == b"\x89PNG\r\n\x1a\n" and len(p) > 10000 for p in shown), [len(p) for p in shown]
    import shutil
    shutil.rmtree(os.path.dirname(png))
