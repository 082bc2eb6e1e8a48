"""Which restored archives ``restore eval`` may compare, and what to call each one.

Several ``--pred`` archives are compared image by image, so they must hold the images of
one input: the same keys, sizes and dtypes as ``--target`` (or, without a target, as each
other), every image written, and each one written by ``restore batch`` (``kind``
"restored") from that input. The input an archive was restored from is told by its
attributes: ``input_archive`` (the path ``restore batch`` read) and, for an archive moved
or copied since, the ``source_dir`` / ``source_files`` that travel with it (the photo
folder it was ingested from). Archives whose attributes cannot tell are accepted; their
known pixels are still compared with the target's while scoring.

Each archive is labelled by the method and checkpoint it records (``csa``, ``csa
(csa-psnr)``, ``telea``), or by the user's ``--label``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from restore.data.archive import Archive

#: The attributes an ingested archive records about its photos; a restored archive copies them.
SOURCE_ATTRS = ("source_dir", "source_files")


class ComparisonError(ValueError):
    """Archives that cannot be compared; ``str()`` is one line and :attr:`option` the option to blame.

    Args:
        message: What is wrong, naming the archive(s).
        option: ``"--pred"``, ``"--target"`` or ``"--label"``.
    """

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option


def _keys_differ(pred: Archive, reference: Archive) -> str | None:
    if list(pred.keys) == list(reference.keys):
        return None
    missing = sorted(set(reference.keys) - set(pred.keys))
    extra = sorted(set(pred.keys) - set(reference.keys))
    if missing:
        return f"missing {', '.join(missing[:5])}"
    if extra:
        return f"unexpected {', '.join(extra[:5])}"
    return "the same keys in another order"


def restored_from(pred: Archive, source: Archive) -> bool | None:
    """Whether ``pred`` was restored from ``source``, as far as their attributes tell.

    Args:
        pred: A restored archive.
        source: The archive it should have been restored from (or another restoration of it).

    Returns:
        True when ``pred`` records ``source``'s path, or the same photos (``source_dir`` and
        ``source_files``); False when it records another path and other photos; None when
        the attributes cannot tell.
    """
    recorded = pred.attrs.get("input_archive")
    expected = source.attrs.get("input_archive") if source.kind == "restored" else str(source.path.resolve())
    if recorded is not None and expected is not None and Path(recorded) == Path(expected):
        return True
    shared = [name for name in SOURCE_ATTRS if name in pred.attrs and name in source.attrs]
    if any(pred.attrs[name] != source.attrs[name] for name in shared):
        return False if recorded is not None else None
    return True if shared else None


def check_restorations(preds: Sequence[Archive], target: Archive | None) -> None:
    """Check that the restored archives can be compared with ``target`` (or with each other).

    Args:
        preds: The ``--pred`` archives, in order.
        target: The ``--target`` archive, or None (compared with the first of ``preds``).

    Raises:
        ComparisonError: Different keys, an incomplete archive, another size or dtype of an
            image, an archive that is not ``restore batch`` output, or one restored from
            other photos; the message names the archive (and the key).
    """
    reference = target if target is not None else preds[0]
    what = "--target" if target is not None else "the first --pred"
    for pred in preds:
        if pred is not reference:
            detail = _keys_differ(pred, reference)
            if detail is not None:
                raise ComparisonError(f"{pred.path} does not hold the images of {reference.path} ({detail})", "--pred")
        if not pred.complete:
            todo = len(pred.keys) - len(pred.done_keys())
            raise ComparisonError(f"{pred.path} is incomplete: {todo} image(s) not restored yet (rerun restore batch to finish it)", "--pred")
        if pred is not reference:
            for key in reference.keys:
                if pred.shape(key) != reference.shape(key) or pred.dtype(key) != reference.dtype(key):
                    raise ComparisonError(
                        f"image {key!r}: {pred.shape(key)} {pred.dtype(key)} in {pred.path} but {reference.shape(key)} "
                        f"{reference.dtype(key)} in {what} {reference.path}", "--pred",
                    )  # fmt: skip
        if pred.kind != "restored":
            raise ComparisonError(f"{pred.path} is not a restored archive (kind {pred.kind!r}); --pred takes the output of restore batch", "--pred")
        if pred is not reference and restored_from(pred, reference) is False:
            raise ComparisonError(
                f"{pred.path} was restored from {pred.attrs.get('input_archive')} (photos of {pred.attrs.get('source_dir')}), "
                f"not from {what} {reference.path} (photos of {reference.attrs.get('source_dir')})", "--pred",
            )  # fmt: skip


def mask_differences(pred: Archive, masks_path: Path, resize: bool, dilate: int) -> str | None:
    """How ``restore eval``'s masks differ from the ones ``pred`` records it was restored with.

    Scoring with other masks than the restoration's is legal (masks moved, a deliberate
    re-scoring) but usually a slip: holes larger than the restored ones score untouched
    original pixels as the method's fill, smaller ones score part of the fill as known.

    Args:
        pred: A restored archive (its ``mask_options``: path, resize, dilate).
        masks_path: ``restore eval --masks``.
        resize: ``--resize-masks``.
        dilate: ``--dilate``.

    Returns:
        One line naming what differs (``--masks``, ``--dilate``, ``--resize-masks``), or None
        when they agree or the archive records no mask options.
    """
    recorded = pred.attrs.get("mask_options")
    if not isinstance(recorded, dict):
        return None
    differences = []
    if recorded.get("path") is not None and Path(str(recorded["path"])) != Path(masks_path).resolve():
        differences.append(f"--masks {recorded['path']}")
    if recorded.get("dilate") is not None and int(recorded["dilate"]) != int(dilate):
        differences.append(f"--dilate {int(recorded['dilate'])} (eval: {int(dilate)})")
    if recorded.get("resize") is not None and bool(recorded["resize"]) != bool(resize):
        differences.append(f"--resize-masks {'on' if recorded['resize'] else 'off'} (eval: {'on' if resize else 'off'})")
    if not differences:
        return None
    return f"{pred.path} was restored with {', '.join(differences)}; scores use the holes given here"


def default_label(archive: Archive) -> str:
    """The method and checkpoint an archive records: ``telea``, ``csa``, ``csa (csa-psnr)``, ``csa ×8``.

    The checkpoint is named by its file stem when that differs from the method's name; an
    ensemble (``--ensemble N``) and a blend (``--blend poisson``) are added. An archive that
    records no method is named after its folder.
    """
    attrs = archive.attrs
    method = attrs.get("method")
    if not method:
        return archive.path.name.removesuffix(".zarr")
    label = str(method)
    checkpoint = attrs.get("checkpoint")
    if checkpoint and Path(str(checkpoint)).stem != label:
        label += f" ({Path(str(checkpoint)).stem})"
    if int(attrs.get("ensemble") or 1) > 1:
        label += f" ×{int(attrs['ensemble'])}"
    if attrs.get("blend") not in (None, "none"):
        label += f" +{attrs['blend']}"
    return label


def labels_for(archives: Sequence[Archive], given: Sequence[str] = ()) -> list[str]:
    """One distinct label per archive: ``given`` (one per archive) or :func:`default_label`.

    Defaults that collide (two runs of one method and checkpoint) get the archive's folder
    name added.

    Raises:
        ComparisonError: ``given`` has another count than ``archives``, an empty or a repeated label.
    """
    if given:
        if len(given) != len(archives):
            raise ComparisonError(f"{len(given)} label(s) for {len(archives)} --pred archive(s); give one --label per --pred, in order", "--label")
        blank = [label for label in given if not label.strip()]
        if blank:
            raise ComparisonError("a label must not be empty", "--label")
        repeated = [label for label, n in Counter(given).items() if n > 1]
        if repeated:
            raise ComparisonError(f"label {repeated[0]!r} is given twice; each --pred needs its own", "--label")
        return [label.strip() for label in given]
    labels = [default_label(archive) for archive in archives]
    counts = Counter(labels)
    labels = [f"{label} [{archive.path.name}]" if counts[label] > 1 else label for label, archive in zip(labels, archives, strict=True)]
    counts = Counter(labels)
    return [f"{label} #{i + 1}" if counts[label] > 1 else label for i, label in enumerate(labels)]


def provenance(archive: Archive) -> dict[str, str | None]:
    """What the report shows about a restored archive: its path, method, checkpoint and digest, masks, strategy."""
    attrs = archive.attrs
    digest = attrs.get("checkpoint_digest")
    return {
        "archive": str(archive.path),
        "method": attrs.get("method"),
        "checkpoint": attrs.get("checkpoint"),
        "checkpoint_digest": str(digest)[:19] if digest else None,  # "sha256:" and 12 hex digits
        "strategy": attrs.get("strategy"),
        "ensemble": attrs.get("ensemble"),
        "masks": attrs.get("mask_source"),
        "created": attrs.get("created"),
    }
