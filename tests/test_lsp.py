"""`diffprog lsp`, driven for real: `python -m diffprog lsp` as a subprocess, spoken to over stdio with JSON-RPC as an
editor does (initialize, initialized, didOpen, publishDiagnostics, codeAction, didSave, shutdown, exit)."""
import json
import os
import queue
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

pytest.importorskip("pygls", reason="diffprog lsp needs pygls (the lsp or test extra)")

TIMEOUT = 60  # seconds; the first check imports numpy and the compiler

BAD = textwrap.dedent("""
    import math
    import diffprog as dp


    def helper(t):
        return math.floor(t) * t


    @dp.differentiable
    def f(x):
        return helper(x) + dp.no_derivative(x)


    @dp.differentiable
    def g(x):
        return math.lgamma(x) * x
    """).lstrip("\n")

GOOD = BAD.replace("math.lgamma(x)", "math.sin(x)").replace("math.floor(t) * t", "t * t")


class Client:
    """A minimal LSP client: Content-Length framed JSON-RPC over the server's stdin/stdout."""

    def __init__(self, cwd):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "diffprog", "lsp"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env)
        self.messages = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        stream = self.process.stdout
        while True:
            headers = {}
            while True:
                line = stream.readline()
                if not line:
                    self.messages.put(None)
                    return
                line = line.decode("ascii").strip()
                if not line:
                    break
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = stream.read(int(headers["content-length"]))
            self.messages.put(json.loads(body))

    def send(self, message):
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def request(self, method, params):
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        reply = self.wait(lambda m: m.get("id") == self.next_id and "method" not in m)
        assert "error" not in reply, reply
        return reply.get("result")

    def notify(self, method, params):
        self.send({"method": method, "params": params})

    def wait(self, matches, timeout=TIMEOUT):
        while True:
            try:
                message = self.messages.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no matching message within {timeout} s; stderr: {self._stderr()}") from None
            if message is None:
                raise AssertionError(f"the server exited; stderr: {self._stderr()}")
            if message.get("method") not in (None, "publishDiagnostics") and "id" in message:
                # a request from the server (e.g. client/registerCapability): answer it
                self.send({"id": message["id"], "result": None})
            if matches(message):
                return message

    def diagnostics_for(self, uri):
        message = self.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics" and
                            m["params"]["uri"] == uri)
        return message["params"]["diagnostics"]

    def _stderr(self):
        if self.process.poll() is None:
            return "(still running)"
        return self.process.stderr.read().decode(errors="replace")[-3000:]

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def client(tmp_path):
    c = Client(tmp_path)
    yield c
    c.close()


def test_diagnostics_on_open_and_save(client, tmp_path):
    path = tmp_path / "model.py"
    path.write_text(BAD)
    uri = path.resolve().as_uri()
    result = client.request("initialize", {"processId": os.getpid(), "rootUri": tmp_path.resolve().as_uri(),
                                           "capabilities": {"textDocument": {"publishDiagnostics": {
                                               "relatedInformation": True}}}})
    capabilities = result["capabilities"]
    assert capabilities["codeActionProvider"]
    assert capabilities["textDocumentSync"]["save"] is not None
    client.notify("initialized", {})
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                            "text": BAD}})
    found = sorted(client.diagnostics_for(uri), key=lambda d: d["range"]["start"]["line"])
    assert [d["code"] for d in found] == ["DP201", "DP102"]
    cut, opaque = found
    # DP201 inside the helper: `math.floor(t)` on line 6 (0-based 5), columns 11..24, with the call chain
    assert cut["range"] == {"start": {"line": 5, "character": 11}, "end": {"line": 5, "character": 24}}
    assert cut["severity"] == 2 and cut["source"] == "diffprog"
    assert "derivative is cut" in cut["message"] and "fix:" in cut["message"]
    [related] = cut["relatedInformation"]
    assert related["location"]["uri"] == uri
    assert related["location"]["range"]["start"] == {"line": 10, "character": 11}
    assert "'helper' is called from 'f'" in related["message"]
    # DP102 at `math.lgamma(x)`
    line = BAD.splitlines()[15]
    start = line.index("math.lgamma")
    assert opaque["range"] == {"start": {"line": 15, "character": start},
                               "end": {"line": 15, "character": start + len("math.lgamma(x)")}}
    assert opaque["severity"] == 1

    # code actions: the fix as an edit (wrap the cut in no_derivative) and suppression on the line
    actions = client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": cut["range"], "context": {"diagnostics": [cut]}})
    titles = [a["title"] for a in actions]
    assert any("dp.no_derivative" in t for t in titles) and "Suppress DP201 on this line" in titles
    wrap = next(a for a in actions if "no_derivative" in a["title"])
    [edit] = wrap["edit"]["changes"][uri]
    assert edit["newText"] == "dp.no_derivative(math.floor(t))" and edit["range"] == cut["range"]
    actions = client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": opaque["range"], "context": {"diagnostics": [opaque]}})
    fix = next(a for a in actions if a["title"].startswith("diffprog fix:"))
    assert "derivative(of=math.lgamma)" in fix["title"] and fix["command"]["arguments"] == ["DP102"]
    suppress = next(a for a in actions if a["title"] == "Suppress DP102 on this line")
    assert suppress["edit"]["changes"][uri][0]["newText"] == "  # diffprog: ignore[DP102]"

    # fixed and saved: the diagnostics are withdrawn
    path.write_text(GOOD)
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                             "contentChanges": [{"text": GOOD}]})
    client.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
    assert client.diagnostics_for(uri) == []

    assert client.request("shutdown", None) is None
    client.notify("exit", None)
    assert client.process.wait(timeout=TIMEOUT) == 0


def test_problem_in_an_imported_file_is_published_for_that_file(client, tmp_path):
    helpers = tmp_path / "helpers.py"
    helpers.write_text("import math\n\n\ndef scaled(t):\n    return round(t) * t\n")
    model = tmp_path / "model.py"
    model.write_text("import diffprog as dp\nfrom helpers import scaled\n\n\n@dp.differentiable\ndef f(x):\n"
                     "    return scaled(x)\n")
    client.request("initialize", {"processId": None, "rootUri": tmp_path.resolve().as_uri(), "capabilities": {}})
    client.notify("initialized", {})
    model_uri, helpers_uri = model.resolve().as_uri(), helpers.resolve().as_uri()
    client.notify("textDocument/didOpen", {"textDocument": {"uri": model_uri, "languageId": "python",
                                                            "version": 1, "text": model.read_text()}})
    published = {}
    while set(published) != {model_uri, helpers_uri}:
        message = client.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics")
        published[message["params"]["uri"]] = message["params"]["diagnostics"]
    assert published[model_uri] == []
    [cut] = published[helpers_uri]
    assert cut["code"] == "DP201" and cut["range"]["start"] == {"line": 4, "character": 11}
    assert cut["relatedInformation"][0]["location"]["uri"] == model_uri
    # closing the file that found it withdraws it
    client.notify("textDocument/didClose", {"textDocument": {"uri": model_uri}})
    published = {}
    while set(published) != {model_uri, helpers_uri}:
        message = client.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics")
        published[message["params"]["uri"]] = message["params"]["diagnostics"]
    assert published == {model_uri: [], helpers_uri: []}
    client.request("shutdown", None)
    client.notify("exit", None)


def test_columns_are_utf16_code_units(client, tmp_path):
    # the checker's columns are UTF-8 bytes (as Python's ast counts); LSP's default encoding is UTF-16
    path = tmp_path / "unicode.py"
    text = 'import diffprog as dp\n\n\n@dp.differentiable\ndef f(x):\n    s = "ééé"; return round(x) * x\n'
    path.write_text(text, encoding="utf-8")
    uri = path.resolve().as_uri()
    client.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    client.notify("initialized", {})
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                            "text": text}})
    [cut] = client.diagnostics_for(uri)
    line = text.splitlines()[5]
    assert cut["range"]["start"] == {"line": 5, "character": line.index("round")}
    assert cut["range"]["end"] == {"line": 5, "character": line.index("round") + len("round(x)")}
    client.request("shutdown", None)
    client.notify("exit", None)


def test_lsp_without_pygls_is_a_usage_error(monkeypatch, capsys):
    import builtins

    from diffprog.cli import main

    real_import = builtins.__import__

    def no_pygls(name, *args, **kwargs):
        if name.startswith("pygls") or name.endswith("lsp") and args and args[2] and "serve" in args[2]:
            raise ImportError("No module named 'pygls'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "diffprog.cli.lsp", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_pygls)
    assert main(["lsp"]) == 2
    assert "pip install 'diffprog[lsp]'" in capsys.readouterr().err


def test_editor_docs_exist():
    docs = (Path(__file__).resolve().parent.parent / "docs" / "editors.md").read_text()
    assert "diffprog lsp" in docs and "Neovim" in docs and "VS Code" in docs
