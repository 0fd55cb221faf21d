#!/usr/bin/env python3
"""PyTorch state dicts to and from a neutral HDF5 file of tensors: the PyTorch side of
`retort import-torch` and `retort export-torch` (lua/retort/interop/torch.lua runs it).

    torch_state.py to-h5 IN.pth OUT.h5     read a state dict, write its tensors under their PyTorch names
    torch_state.py to-pth IN.h5 OUT.pth    the reverse: a state dict that torch.load(..., weights_only=True) reads
    torch_state.py check                   exit 0 when torch, numpy and h5py can be imported

Choices:
  - IN.pth is read with torch.load(IN, map_location="cpu", weights_only=True): the restricted
    unpickler, which refuses any pickle that would import or call something other than tensors and
    plain containers, so a malicious checkpoint cannot run code here. A file refused that way is
    reported as such; nothing falls back to a full unpickle.
  - A bare state dict (string -> tensor) is taken as it is; otherwise the first of the keys "model",
    "state_dict", "net" (in that order) that holds one, as RepDistiller ({'model': ..., 'epoch': ...}),
    torchvision's references and most training scripts save them. The key used is recorded.
  - The neutral file: root attributes format = "retort.torch-tensors", version = 1, container (the key
    the state dict came from, "" for a bare one), names (the keys in their order, joined by "\n");
    the group /tensors holds one dataset per tensor, named by its key, with the attribute torch_dtype
    (the tensor's PyTorch dtype, e.g. "float16"). Values are stored exactly: float16/32/64 and integer
    tensors as they are, bfloat16 as float32 and bool as uint8 (numpy and HDF5 have neither; both
    conversions are exact). Keys holding '/' cannot be HDF5 names and are refused.
  - to-pth writes the datasets of /tensors in the order of `names` (every member when absent) as an
    OrderedDict, each cast to its torch_dtype attribute when present (so int64 counters stay int64),
    wrapped as {container: state_dict} when the root attribute container is not empty; it writes a
    temporary file and renames it, and reads the result back with weights_only=True before that.
Exit status: 0 done, 2 a file that cannot be used (the message says why), 3 a missing package.
"""
import collections
import os
import sys

CONTAINERS = ("model", "state_dict", "net")
FORMAT = "retort.torch-tensors"
VERSION = 1


def fail(msg, status=2):
    sys.stderr.write(msg.rstrip("\n") + "\n")
    sys.exit(status)


def need_packages():
    missing = []
    mods = {}
    for name, pkg in (("numpy", "python3-numpy"), ("h5py", "python3-h5py"), ("torch", "python3-torch")):
        try:
            mods[name] = __import__(name)
        except ImportError:
            missing.append(pkg)
    if missing:
        fail("%s cannot import %s: install %s (Debian: apt-get install %s)" % (
            sys.executable, ", ".join(m.split("-")[1] for m in missing), " and ".join(missing), " ".join(missing)), 3)
    return mods["numpy"], mods["h5py"], mods["torch"]


def is_state_dict(torch, obj):
    return isinstance(obj, dict) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def describe(torch, obj):
    if isinstance(obj, dict):
        def kind(v):
            if isinstance(v, torch.Tensor):
                return "tensor"
            return type(v).__name__
        items = ["%r: %s" % (k, kind(v)) for k, v in list(obj.items())[:12]]
        more = ", ..." if len(obj) > 12 else ""
        return "a dict of %d entries {%s%s}" % (len(obj), ", ".join(items), more)
    return "a %s" % type(obj).__name__


def find_state_dict(torch, obj, path):
    if is_state_dict(torch, obj):
        return obj, ""
    if isinstance(obj, dict):
        for key in CONTAINERS:
            if key in obj and is_state_dict(torch, obj[key]):
                return obj[key], key
        for key in CONTAINERS:
            if key in obj and isinstance(obj[key], dict):
                bad = [k for k, v in obj[key].items() if not isinstance(v, torch.Tensor)]
                fail("%s: the state dict under '%s' holds entries that are not tensors: %s" % (
                    path, key, ", ".join(repr(k) for k in bad[:12])))
    fail("%s: no state dict found: expected a dict of tensors, or one under the key %s; the file holds %s" % (
        path, ", ".join("'%s'" % k for k in CONTAINERS), describe(torch, obj)))


def restricted_pickle(torch):
    """A pickle module for torch.load whose Unpickler resolves only the globals torch's own
    weights_only loader allows (tensors, storages, OrderedDict, ...), so a pickle that names any
    other function (os.system, ...) is refused exactly as with weights_only=True. Unlike torch
    1.13's weights_only unpickler it reads every plain opcode, Python floats (BINFLOAT) included:
    RepDistiller's checkpoints keep the optimizer's learning rate and momentum beside the weights."""
    import pickle
    import types
    from torch._weights_only_unpickler import _get_allowed_globals
    allowed = _get_allowed_globals()

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            key = "%s.%s" % (module, name)
            if key in allowed:
                return allowed[key]
            raise pickle.UnpicklingError("Unsupported class %s (it could run code when unpickled)" % key)

    return types.SimpleNamespace(Unpickler=Unpickler, load=lambda f, **kw: Unpickler(f, **kw).load(),
                                 __name__="retort_restricted_pickle")


def load_restricted(torch, src):
    """torch.load with weights_only=True; where torch's own restricted loader lacks an opcode (floats,
    before torch 2.0), the same allow-list through restricted_pickle(). torch 1.13's torch.load drops a
    pickle_module unless weights_only is off, so the zip archive is read with its loader directly
    (torch.serialization._load, the function torch.load itself ends in); the old non-zip format is
    not read that way (re-save it with a current torch)."""
    try:
        return torch.load(src, map_location="cpu", weights_only=True)
    except Exception as e:
        if "Unsupported operand" not in " ".join(str(e).split()):
            raise
    from torch import serialization
    with serialization._open_file_like(src, "rb") as f:
        if not serialization._is_zipfile(f):
            raise RuntimeError("WeightsUnpickler error: a legacy (pre-1.6, non-zip) checkpoint holding Python "
                               "floats; re-save it with torch.save in a session you trust")
        with serialization._open_zipfile_reader(f) as z:
            return serialization._load(z, "cpu", restricted_pickle(torch), encoding="utf-8")


def to_h5(src, dst):
    np, h5py, torch = need_packages()
    try:
        obj = load_restricted(torch, src)
    except FileNotFoundError:
        fail("%s: no such file" % src)
    except Exception as e:  # the restricted unpickler's refusal, a truncated or foreign file, ...
        text = " ".join(str(e).split())
        why = text.split("WeightsUnpickler error:")[-1].strip() or (
            "the file is empty or cut short" if isinstance(e, EOFError) else type(e).__name__)
        if "Unsupported class" in text:
            fail("%s: refused by torch.load(weights_only=True): it holds an object other than tensors and plain "
                 "containers, which could run code when unpickled (%s)" % (src, why))
        if "weights_only" in text or isinstance(e, __import__("pickle").UnpicklingError):
            fail("%s: torch.load(weights_only=True) cannot read it: not a PyTorch checkpoint of tensors and plain "
                 "containers (%s)" % (src, why))
        fail("%s: not a PyTorch checkpoint torch.load can read (%s: %s)" % (src, type(e).__name__, why))
    sd, container = find_state_dict(torch, obj, src)
    for k in sd:
        if "/" in k or k in (".", ".."):
            fail("%s: the key %r cannot be stored as an HDF5 name" % (src, k))
    tmp = "%s.tmp-%d" % (dst, os.getpid())
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["version"] = VERSION
            f.attrs["container"] = container
            f.attrs["names"] = "\n".join(sd.keys())
            g = f.create_group("tensors")
            for k, t in sd.items():
                if t.is_sparse or t.is_quantized or t.is_complex():
                    fail("%s: %s is a %s tensor, which retort cannot hold" % (
                        src, k, "sparse" if t.is_sparse else ("quantized" if t.is_quantized else "complex")))
                dtype = str(t.dtype).replace("torch.", "")
                t = t.detach().cpu().contiguous()
                if t.dtype == torch.bfloat16:
                    t = t.float()
                elif t.dtype == torch.bool:
                    t = t.to(torch.uint8)
                d = g.create_dataset(k, data=t.numpy())
                d.attrs["torch_dtype"] = dtype
        os.replace(tmp, dst)
    except OSError as e:
        fail("%s: cannot write (%s)" % (dst, e))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def attr_text(attrs, name, default=None):
    """A string attribute as str: retort writes fixed-length strings, which h5py reads as bytes."""
    v = attrs.get(name, default)
    return v.decode("utf-8") if isinstance(v, bytes) else v


def to_pth(src, dst):
    np, h5py, torch = need_packages()
    try:
        f = h5py.File(src, "r")
    except OSError as e:
        fail("%s: cannot open as HDF5 (%s)" % (src, e))
    with f:
        if attr_text(f.attrs, "format") != FORMAT or "tensors" not in f:
            fail("%s: not a %s file (no format attribute or /tensors group)" % (src, FORMAT))
        g = f["tensors"]
        names = attr_text(f.attrs, "names")
        names = [n for n in names.split("\n") if n] if names else sorted(g.keys())
        extra = sorted(set(g.keys()) - set(names))
        missing = [n for n in names if n not in g]
        if missing or extra:
            fail("%s: the names attribute and /tensors disagree (missing: %s; not listed: %s)" % (
                src, ", ".join(missing) or "none", ", ".join(extra) or "none"))
        sd = collections.OrderedDict()
        for n in names:
            d = g[n]
            t = torch.from_numpy(np.array(d[()], copy=True)).reshape(d.shape)
            want = attr_text(d.attrs, "torch_dtype")
            if want:
                dt = getattr(torch, want, None)
                if not isinstance(dt, torch.dtype):
                    fail("%s: %s has an unknown torch_dtype '%s'" % (src, n, want))
                t = t.to(dt)
            sd[n] = t
        container = attr_text(f.attrs, "container", "")
    obj = {container: sd} if container else sd
    tmp = "%s.tmp-%d" % (dst, os.getpid())
    try:
        torch.save(obj, tmp)
        torch.load(tmp, map_location="cpu", weights_only=True)  # what a user will do with it
        os.replace(tmp, dst)
    except OSError as e:
        fail("%s: cannot write (%s)" % (dst, e))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv):
    usage = "usage: torch_state.py to-h5 IN.pth OUT.h5 | to-pth IN.h5 OUT.pth | check"
    if len(argv) == 2 and argv[1] == "check":
        need_packages()
        return 0
    if len(argv) != 4 or argv[1] not in ("to-h5", "to-pth"):
        fail(usage)
    (to_h5 if argv[1] == "to-h5" else to_pth)(argv[2], argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
