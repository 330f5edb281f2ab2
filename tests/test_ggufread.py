"""FastGGUFReader gives exactly the fields, parts and values of the gguf package's own reader."""

import gguf
import numpy as np
import pytest

from doppel.errors import DoppelError
from doppel.export.ggufinfo import read_run_info
from doppel.ggufread import FastGGUFReader
from doppel.models import _embedded_gguf


def _assert_same_reading(path):
    original, fast = gguf.GGUFReader(path), FastGGUFReader(path)
    assert list(fast.fields) == list(original.fields)
    for name, expected in original.fields.items():
        got = fast.fields[name]
        assert (got.offset, got.name, got.data, got.types) == (
            expected.offset, expected.name, expected.data, expected.types), name
        for got_part, expected_part in zip(got.parts, expected.parts, strict=True):
            assert got_part.dtype == expected_part.dtype, name
            assert got_part.shape == expected_part.shape, name
            assert got_part.tobytes() == expected_part.tobytes(), name
        assert got.contents() == expected.contents(), name
    assert fast.data_offset == original.data_offset
    assert [(t.name, t.tensor_type, t.data_offset, t.n_bytes) for t in fast.tensors] == [
        (t.name, t.tensor_type, t.data_offset, t.n_bytes) for t in original.tensors]
    return original, fast


def _parsed_by_transformers(reader):
    """The values transformers makes of the fields it can read (not nested arrays)."""
    from transformers.integrations.ggml import _gguf_parse_value

    return {name: [_gguf_parse_value(field.parts[index], field.types) for index in field.data]
            for name, field in reader.fields.items() if len(field.types) <= 2}


def test_real_gguf_reads_the_same_as_the_gguf_package():
    """SmolLM2's bundled Q4_1 file: a 49k-token vocabulary, merges, scalars and tensors."""
    original, fast = _assert_same_reading(_embedded_gguf("smollm2-135m"))
    tokens = fast.fields["tokenizer.ggml.tokens"]
    assert len(tokens.data) == 49152
    assert _parsed_by_transformers(fast) == _parsed_by_transformers(original)


def _write(path, arrays):
    writer = gguf.GGUFWriter(path, "llama")
    for key, (values, kind) in arrays.items():
        writer.add_key_value(key, values, gguf.GGUFValueType.ARRAY, sub_type=kind)
    writer.add_string("plain.string", "héllo")
    writer.add_uint32("plain.number", 7)
    writer.add_tensor("weight", np.arange(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


EVERY_ARRAY = {
    "strings": (["", "a", "über ✓", "<0x0A>", "x" * 300], gguf.GGUFValueType.STRING),
    "int32s": ([3, -1, 2**31 - 1], gguf.GGUFValueType.INT32),
    "float32s": ([0.5, -2.25, 1e-30], gguf.GGUFValueType.FLOAT32),
    "uint8s": ([0, 255], gguf.GGUFValueType.UINT8),
    "uint64s": ([2**64 - 1], gguf.GGUFValueType.UINT64),
    "bools": ([True, False, True], gguf.GGUFValueType.BOOL),
    "nested": ([[1, 2], [3]], gguf.GGUFValueType.ARRAY),
}


def test_every_array_kind_reads_the_same_as_the_gguf_package(tmp_path):
    _write(tmp_path / "every.gguf", EVERY_ARRAY)
    original, fast = _assert_same_reading(tmp_path / "every.gguf")
    assert fast.fields["strings"].contents() == EVERY_ARRAY["strings"][0]
    assert fast.fields["bools"].contents() == [True, False, True]
    assert _parsed_by_transformers(fast) == _parsed_by_transformers(original)


def test_writes_through_parts_reach_the_file_in_r_plus_mode(tmp_path):
    """gguf's own metadata editors change values in place; the fast parts are views too."""
    path = tmp_path / "edit.gguf"
    _write(path, {"strings": (["abc", "def"], gguf.GGUFValueType.STRING),
                  "int32s": ([1, 2], gguf.GGUFValueType.INT32)})
    editor = FastGGUFReader(path, "r+")
    editor.fields["strings"].parts[editor.fields["strings"].data[1]][:] = np.frombuffer(
        b"xyz", np.uint8)
    editor.fields["int32s"].parts[editor.fields["int32s"].data[0]][0] = 41
    editor.data.flush()
    del editor
    reread = gguf.GGUFReader(path)
    assert reread.fields["strings"].contents() == ["abc", "xyz"]
    assert reread.fields["int32s"].contents() == [41, 2]


def test_truncated_vocabulary_is_a_clear_error(tmp_path):
    path = tmp_path / "cut.gguf"
    _write(path, {"strings": (["word"] * 1000, gguf.GGUFValueType.STRING)})
    data = path.read_bytes()
    path.write_bytes(data[:200])  # ends inside the string array
    with pytest.raises(ValueError, match="past the end"):
        FastGGUFReader(path)
    with pytest.raises(DoppelError, match="not a readable GGUF file"):
        read_run_info(path)
