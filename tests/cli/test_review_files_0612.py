"""Files as real pipelines and real mistakes give them: UTF-16 text (Excel's "Unicode Text",
Windows PowerShell), empty trailing columns, AFNI ``#`` comment lines, and workbooks, HDF5 or
NIfTI files given where a table is expected. Each is read to the values written, or refused in
one line naming the file and what it is."""

from __future__ import annotations

import gzip
import io
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from delssome_norms.cli.main import main
from delssome_norms.errors import InputWarning
from delssome_norms.io.readers import read_labelled_numeric
from delssome_norms.io.regions import DK68_REGIONS
from delssome_norms.io.timeseries import read_timeseries

RNG = np.random.default_rng(7)
TS = np.round(RNG.standard_normal((90, 68)), 5)  # frames x regions, exact in %.5f


def _text(sep: str = ",", end: str = "") -> str:
    return "".join(sep.join(f"{v:.5f}" for v in row) + end + "\n" for row in TS)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_text_reads_the_values_written(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "run.tsv"
    path.write_bytes(_text("\t").replace("\n", "\r\n").encode(encoding))
    values, header, labels = read_labelled_numeric(path)
    np.testing.assert_array_equal(values, TS)
    assert header is None and labels is None


def test_utf16_named_header_is_matched_by_name(tmp_path: Path) -> None:
    order = RNG.permutation(68)
    head = "\t".join(f'"{DK68_REGIONS[k]}"' for k in order)
    path = tmp_path / "run.tsv"
    path.write_text(head + "\n" + _text("\t"), encoding="utf-16")
    ts = read_timeseries(path)
    expected = np.empty_like(TS)
    expected[:, order] = TS  # file column j holds region order[j]
    np.testing.assert_array_equal(ts, expected)


@pytest.mark.parametrize("extra", [2, 3])
def test_empty_trailing_columns_are_dropped_with_a_warning(tmp_path: Path, extra: int) -> None:
    path = tmp_path / "fc.csv"
    fc = np.corrcoef(TS.T)
    path.write_text("".join(",".join(f"{v:.17g}" for v in row) + "," * extra + "\n" for row in fc))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values, _, _ = read_labelled_numeric(path)
    np.testing.assert_array_equal(values, fc)
    msgs = [str(w.message) for w in caught if issubclass(w.category, InputWarning)]
    assert len(msgs) == 1 and "fc.csv" in msgs[0] and f"{extra - 1} empty column" in msgs[0]


def test_empty_trailing_columns_of_a_time_series_via_the_cli(tmp_path: Path, capsys) -> None:
    path = tmp_path / "run.csv"
    path.write_text(_text(",", ",,"))
    with pytest.warns(InputWarning, match="1 empty column"):
        assert main(["validate", "--timeseries", str(path), "--tr", "0.72"]) == 0
    assert "90 frames x 68 regions" in capsys.readouterr().out


def test_one_trailing_separator_is_silent(tmp_path: Path) -> None:
    path = tmp_path / "run.csv"
    path.write_text(_text(",", ","))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values, _, _ = read_labelled_numeric(path)
    np.testing.assert_array_equal(values, TS)


def test_afni_comment_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "roi_ts.1D"
    path.write_text('# 3dROIstats output\n# ni_type = "68*float"\n' + _text(" "))
    values, header, _ = read_labelled_numeric(path)
    np.testing.assert_array_equal(values, TS)
    assert header is None


def test_a_savetxt_header_after_a_comment_still_names_the_regions(tmp_path: Path) -> None:
    path = tmp_path / "run.csv"
    names = list(DK68_REGIONS[::-1])
    np.savetxt(path, TS, delimiter=",", fmt="%.5f", header="made by a script\n" + ",".join(names))
    np.testing.assert_array_equal(read_timeseries(path), TS[:, ::-1])


def _xlsx_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
    return buf.getvalue()


def _nifti_bytes() -> bytes:
    header = bytearray(352)
    header[0:4] = (348).to_bytes(4, "little")
    header[344:348] = b"n+1\x00"
    return bytes(header) + bytes(64)


CASES = [
    ("subject.xlsx", _xlsx_bytes(), "Excel workbook"),
    ("exported.csv", _xlsx_bytes(), "Excel workbook"),  # a workbook renamed .csv
    ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "Excel 97-2003"),
    ("atlas ts.h5", b"\x89HDF\r\n\x1a\n" + bytes(600), "HDF5"),
    ("bold.nii", _nifti_bytes(), "NIfTI image"),
    ("bold.nii.gz", gzip.compress(_nifti_bytes()), "NIfTI image"),
]


@pytest.mark.parametrize(("name", "raw", "what"), CASES)
def test_binary_formats_are_named_in_one_line(tmp_path: Path, capsys, name, raw, what) -> None:
    path = tmp_path / name
    path.write_bytes(raw)
    for argv in (
        ["validate", "--timeseries", str(path), "--tr", "0.72"],
        ["validate", "--sc", str(path)],
        ["validate", "--demographics", str(path)],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("delssome-norms: error:"), err
        assert str(path) in lines[0] and what in lines[0], err
