"""One column of values per file (a regional map, an FCD-CDF) as pandas and spreadsheets save it.

``pd.Series(v).to_csv(path)`` and ``pd.DataFrame({"myelin": v}).to_csv(path)`` write pandas'
index as a first column (``0, 1, ...``) under an empty name: :func:`read_value_table` drops it,
as the FC and time-series readers do (the test is
:func:`~delssome_norms.io.region_names.leads_with_index`). Where two columns are left although
one is expected, :func:`explain_two_columns` names the likely cause: an index column without a
header, or a one-column table written with a decimal comma (``0,25``), which a comma-separated
reader splits in two.
"""

from __future__ import annotations

import numpy as np

from delssome_norms.errors import InvalidInputError
from delssome_norms.io.decimal_comma import comma_reading
from delssome_norms.io.readers import PathLike, _read_text, read_labelled_numeric, read_numeric
from delssome_norms.io.region_names import is_numbering, leads_with_index, numbering_permutation


def _series_by_pandas(values: np.ndarray) -> np.ndarray | None:
    """The values of a one-column table that ``pd.Series(v).to_csv(path)`` wrote with its
    numbered header (``,0``) and index (read with empty cells as NaN), as one column; None when
    ``values`` is not laid out that way."""
    if values.ndim != 2 or values.shape[1] != 2 or values.shape[0] < 3:
        return None
    head, index = values[0], values[1:, 0]
    if not np.isnan(head[0]) or numbering_permutation(head[1:]) is None or not is_numbering(index):
        return None
    return values[1:, 1:]


def read_value_table(path: PathLike) -> tuple[np.ndarray, list[str] | None, list[str] | None]:
    """:func:`~delssome_norms.io.readers.read_labelled_numeric` of a table of one column of
    values, without the index column that pandas writes before it (``0, 1, ...`` or ``1, 2,
    ...`` under an empty or ``index`` name, or under a numbered header: ``,0``)."""
    try:
        values, header, labels = read_labelled_numeric(path)
    except InvalidInputError as exc:
        try:
            series = _series_by_pandas(read_labelled_numeric(path, allow_na=True)[0])
        except InvalidInputError:
            series = None
        if series is None:  # a one-word header, then "0,25": split at whitespace, not commas
            raise _decimal_comma_error(path) or exc from None
        return series, None, None
    if labels is None and header is not None and leads_with_index(header, values, frames=False):
        values, header = values[:, 1:], header[1:]
    return values, header, labels


def explain_two_columns(path: PathLike, values: np.ndarray) -> None:
    """Raise a clear error for a table of two columns given where one column of values is
    expected, where the cause is recognised: a first column that counts the rows (an index
    saved without a header) or lines that read as one number with a decimal comma (``0,25``);
    return otherwise (the caller's shape check reports the table)."""
    if values.ndim != 2 or values.shape[1] != 2 or values.shape[0] < 3:
        return
    if is_numbering(values[:, 0]):
        raise InvalidInputError(
            f"has two columns and the first counts the rows ({values[0, 0]:g}, "
            f"{values[1, 0]:g}, ...): an index, not values; save the {values.shape[0]} values "
            "as one column (pandas: to_csv(path, index=False))",
            str(path),
        )
    error = _decimal_comma_error(path)
    if error is not None:
        raise error


def _decimal_comma_error(path: PathLike) -> InvalidInputError | None:
    """The error for a one-column table whose numbers hold a comma
    (:func:`~delssome_norms.io.decimal_comma.comma_reading`), else None: a decimal comma, or a
    thousands separator (``24,533``) or two columns of integers (``1001,3``) where the text
    cannot tell, which the message leaves to the user."""
    try:
        found = comma_reading(_read_text(path))
    except InvalidInputError:  # a binary array: no text to look at
        return None
    if found is None:
        return None
    line, reading = found
    bare = line.strip('"')
    if line.startswith('"'):
        what = (
            f"every line holds one quoted cell with a comma (such as {line!r}: one value, not "
            "two numbers), where a plain number"
        )
    else:
        what = (
            f"every line holds two numbers split by a comma (such as {line!r}), where one column "
            "of values"
        )
    if reading == "thousands":
        cause = (
            f"the comma may be a thousands separator ({bare.replace(',', '')!r}: remove the "
            f"separators) or a decimal comma ({bare.replace(',', '.')!r}: write decimal points); "
            "check which the values mean and save them without commas"
        )
    elif reading == "either":
        cause = (
            f"these may be numbers with a decimal comma ({bare.replace(',', '.')!r}: write "
            "decimal points, e.g. export the CSV with '.' as the decimal separator) or two "
            "columns of integers (save only the column of values)"
        )
    else:
        cause = (
            f"this looks like decimal commas; write decimal points ({bare.replace(',', '.')!r}; "
            "e.g. export the CSV with '.' as the decimal separator)"
        )
    return InvalidInputError(f"{what} is expected: {cause}", str(path))


def read_value_column(path: PathLike) -> np.ndarray:
    """A table of one column of values (an FCD-CDF) as a 2-D float64 array, as
    :func:`~delssome_norms.io.readers.read_numeric` reads it, without pandas' index column
    (:func:`read_value_table`) and with a clear error for two columns whose cause is recognised
    (:func:`explain_two_columns`)."""
    values, _, labels = read_value_table(path)
    if labels is not None:
        return read_numeric(path)  # raises: a first column of text
    explain_two_columns(path, values)
    return values
