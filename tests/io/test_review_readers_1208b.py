"""Review 12-08 (readers, minor): maps and FCD-CDFs saved by pandas with its index, one-column
tables with a decimal comma, JSON sidecars with a byte-order mark, an FC named down its first
column only, gzip-compressed and scipy-sparse arrays, a map naming a region twice."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InvalidInputError
from delssome_norms.io.checks import check_fcd_cdf
from delssome_norms.io.index_column import read_value_column
from delssome_norms.io.json_object import read_json_object
from delssome_norms.io.named_regions import read_map_named
from delssome_norms.io.readers import read_fc, read_map, read_numeric, read_sc
from delssome_norms.io.sidecar import find_sidecar_tr

MAP = np.round(np.linspace(0.5, 2.5, 68) ** 1.5, 6)


def _cdf() -> np.ndarray:
    x = np.linspace(-1, 1, 10000)
    pdf = np.exp(-(((x - 0.3) / 0.2) ** 2))
    return np.cumsum(pdf) / pdf.sum()


@pytest.mark.parametrize(
    "write",
    [
        lambda p: pd.Series(MAP).to_csv(p),  # header ",0"
        lambda p: pd.Series(MAP, name="myelin").to_csv(p),  # header ",myelin"
        lambda p: pd.DataFrame({"myelin": MAP}).to_csv(p),
        lambda p: pd.DataFrame({"myelin": MAP}, index=range(1, 69)).to_csv(p),  # 1..N
        lambda p: pd.DataFrame({"x": MAP}).rename_axis("index").to_csv(p),
        # R's write.csv(data.frame(x = v)): quoted names, rows numbered 1..N
        lambda p: p.write_text(
            '"","x"\n' + "".join(f'"{i + 1}",{float(v)!r}\n' for i, v in enumerate(MAP))
        ),
    ],
    ids=["series", "named-series", "frame", "one-based", "index-name", "r-write-csv"],
)
def test_map_saved_with_pandas_index_is_read_without_it(tmp_path, write):
    path = tmp_path / "myelin.csv"
    write(path)
    np.testing.assert_array_equal(read_map(path), MAP)
    named = read_map_named(path)
    assert named.kind == "plain" and named.values.shape == (68, 1)


def test_map_first_column_not_an_index_is_not_dropped(tmp_path):
    path = tmp_path / "two.csv"  # an empty-named first column that does not count the rows
    pd.DataFrame({"a": MAP[::-1], "myelin": MAP}).set_index("a").to_csv(path)
    path.write_text(path.read_text().replace("a,myelin", ",myelin", 1))
    with pytest.raises(InvalidInputError, match=r"got shape \(68, 2\)"):
        read_map(path)


@pytest.mark.parametrize("write", ["series", "frame"])
def test_fcd_cdf_saved_with_pandas_index_is_read_without_it(tmp_path, write):
    cdf = _cdf()
    path = tmp_path / "cdf.csv"
    (pd.Series(cdf) if write == "series" else pd.DataFrame({"cdf": cdf})).to_csv(path)
    values = read_value_column(path)
    np.testing.assert_array_equal(values, cdf[:, None])  # the values written, one column
    np.testing.assert_allclose(check_fcd_cdf(values), cdf, rtol=1e-12)


def test_value_column_keeps_the_reader_errors(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("".join(f"r{i},{i / 10}\n" for i in range(5)))
    with pytest.raises(InvalidInputError) as expected:
        read_numeric(path)
    with pytest.raises(InvalidInputError, match="non-numeric value 'r1'") as err:
        read_value_column(path)
    assert str(err.value) == str(expected.value)
    path.write_text("0.1,0.2\n0.3\n0.4,0.5\n")
    with pytest.raises(InvalidInputError) as expected:
        read_numeric(path)
    with pytest.raises(InvalidInputError, match="rows have different lengths") as err:
        read_value_column(path)
    assert str(err.value) == str(expected.value)


def test_index_without_header_is_named(tmp_path):
    path = tmp_path / "myelin.csv"
    pd.Series(MAP).to_csv(path, header=False)
    with pytest.raises(
        InvalidInputError, match=r"the first counts the rows \(0, 1, \.\.\.\).*index=False"
    ):
        read_map(path)
    cdf = tmp_path / "cdf.csv"
    pd.Series(_cdf()).to_csv(cdf, header=False)
    with pytest.raises(InvalidInputError, match="an index, not values"):
        read_value_column(cdf)


def test_one_column_with_decimal_commas_is_named(tmp_path):
    cdf = _cdf()
    path = tmp_path / "cdf.csv"
    path.write_text("\n".join(repr(float(v)).replace(".", ",") for v in cdf) + "\n")
    first = repr(float(cdf[0])).replace(".", ",")
    with pytest.raises(InvalidInputError, match="looks like decimal commas") as err:
        read_value_column(path)
    assert repr(first) in str(err.value) and "write decimal points" in str(err.value)
    maps = tmp_path / "myelin.csv"
    lines = "".join(f"{float(v)!r}\n".replace(".", ",") for v in MAP)
    for text in (lines, "myelin\n" + lines):  # a one-word header: split at whitespace
        maps.write_text(text)
        with pytest.raises(InvalidInputError, match="looks like decimal commas"):
            read_map(maps)
    with pytest.raises(InvalidInputError, match="looks like decimal commas"):
        read_value_column(maps)


def test_two_integer_columns_without_decimal_look_keep_the_shape_error(tmp_path):
    path = tmp_path / "two.csv"
    path.write_text("".join(f"{v:.3f},{v:.2f}\n" for v in MAP))
    with pytest.raises(InvalidInputError, match=r"got shape \(68, 2\)"):
        read_map(path)


def test_json_sidecar_with_byte_order_mark(tmp_path):
    run = tmp_path / "run.tsv"
    np.savetxt(run, np.zeros((3, 2)), delimiter="\t")
    (tmp_path / "run.json").write_text(json.dumps({"RepetitionTime": 0.72}), encoding="utf-8-sig")
    assert (tmp_path / "run.json").read_bytes()[:3] == b"\xef\xbb\xbf"
    tr, side = find_sidecar_tr(run)
    assert tr == 0.72 and side.name == "run.json"
    assert read_json_object(tmp_path / "run.json", "sidecar", "fix it") == {"RepetitionTime": 0.72}


def test_fc_named_down_the_first_column_without_header(tmp_path):
    rng = np.random.default_rng(0)
    fc = np.corrcoef(rng.standard_normal((68, 200)))
    path = tmp_path / "fc.csv"
    path.write_text(
        "".join(
            DK68_REGIONS[i] + "," + ",".join(repr(float(v)) for v in fc[i]) + "\n" for i in range(68)
        )
    )
    with pytest.raises(InvalidInputError, match="first line looks like data") as err:
        read_fc(path)
    text = str(err.value)
    assert "names unknown" not in text and "remove the header row" not in text
    assert "add that header row of DK68 region names" in text
    # with that header row the same file is read
    path.write_text("," + ",".join(DK68_REGIONS) + "\n" + path.read_text())
    np.testing.assert_allclose(read_fc(path), fc)


def test_unknown_text_names_keep_their_message(tmp_path):
    path = tmp_path / "fc.csv"
    head = ",".join(f"area{chr(97 + i % 26)}{i // 26}x" for i in range(68))
    path.write_text(head + "\n" + "".join(",".join(["0.1"] * 68) + "\n" for _ in range(68)))
    with pytest.raises(InvalidInputError, match="68 of 68 names unknown"):
        read_fc(path)


@pytest.mark.parametrize("kind", ["npy", "npz"])
def test_gzip_compressed_arrays_are_named(tmp_path, kind):
    path = tmp_path / f"sc.{kind}"
    (np.save if kind == "npy" else lambda p, a: np.savez(p, sc=a))(path, np.eye(68))
    gz = tmp_path / f"sc.{kind}.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(InvalidInputError) as err:
        read_sc(gz)
    assert f"gzip-compressed NumPy .{kind}" in str(err.value)
    assert f"decompress it (gunzip sc.{kind}.gz) and give the .{kind} file" in str(err.value)
    assert "give it a" not in str(err.value)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_scipy_sparse_npz_is_read(tmp_path, fmt):
    rng = np.random.default_rng(1)
    sc = rng.random((68, 68))
    sc = np.triu(sc, 1) + np.triu(sc, 1).T
    sc[sc < 0.6] = 0
    path = tmp_path / "sc.npz"
    sp.save_npz(path, getattr(sp, f"{fmt}_matrix")(sc))
    np.testing.assert_array_equal(read_sc(path), sc)


def test_map_naming_a_region_twice_down_its_first_column(tmp_path):
    names = list(DK68_REGIONS)
    names[5] = names[4]
    path = tmp_path / "myelin.csv"
    path.write_text("".join(f"{n},{float(v)!r}\n" for n, v in zip(names, MAP)))
    with pytest.raises(InvalidInputError) as err:
        read_map(path)
    text = str(err.value)
    assert f"names region(s) '{DK68_REGIONS[4]}' more than once in its first column" in text
    assert "header" not in text
