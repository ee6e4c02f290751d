import json
import os

import pytest
import torch
from safetensors.torch import save_file
from sft_testing import assert_same_sft, random_sft

import sft.serialization
from sft import SFT, SftConfig, SftFormatError, SparseDiff
from sft.constants import FORMAT_VERSION, SFT_CONFIG_NAME, SFT_WEIGHTS_NAME


def test_round_trip_is_exact(tmp_path, tiny_mlm_model):
    original = random_sft(tiny_mlm_model, density=0.1, seed=0, with_abs=("cls.predictions.bias",))
    original.config = SftConfig(
        kind="language",
        base_model_name_or_path="tiny-bert",
        ft_params_num=123,
        training_arguments={"sft_arguments": {"n_ft_iterations": 1}},
    )
    original.save_pretrained(tmp_path / "saved")
    loaded = SFT.from_pretrained(tmp_path / "saved")
    assert_same_sft(original, loaded)
    assert loaded.config == original.config
    assert loaded.name_or_path == str(tmp_path / "saved")


def test_round_trip_keeps_empty_and_scalar_diffs(tmp_path):
    original = SFT(
        diffs={
            "empty": SparseDiff.empty((3, 4)),
            "scalar": SparseDiff((), torch.tensor([0]), torch.tensor([2.5])),
            "half": SparseDiff(
                (5,), torch.tensor([1, 4]), torch.tensor([1.0, -1.0], dtype=torch.float16)
            ),
        }
    )
    original.save_pretrained(tmp_path)
    loaded = SFT.from_pretrained(tmp_path)
    assert_same_sft(original, loaded)
    assert loaded.diffs["half"].dtype == torch.float16


def test_config_file_is_key_sorted_json(tmp_path, tiny_mlm_model):
    random_sft(tiny_mlm_model, density=0.01, seed=0).save_pretrained(tmp_path)
    text = (tmp_path / SFT_CONFIG_NAME).read_text()
    values = json.loads(text)
    assert list(values) == sorted(values)
    assert values["format_version"] == FORMAT_VERSION
    assert {
        "kind",
        "base_model_name_or_path",
        "base_model_fingerprint",
        "ft_params_num",
        "training_arguments",
        "library_version",
    } <= set(values)


def test_saved_files_get_default_permissions(tmp_path, tiny_mlm_model):
    probe = tmp_path / "probe"
    probe.touch()
    expected_mode = probe.stat().st_mode & 0o777
    random_sft(tiny_mlm_model, density=0.01, seed=0).save_pretrained(tmp_path / "saved")
    for name in (SFT_WEIGHTS_NAME, SFT_CONFIG_NAME):
        assert (tmp_path / "saved" / name).stat().st_mode & 0o777 == expected_mode, name


def test_failed_save_keeps_previous_files(tmp_path, tiny_mlm_model, monkeypatch):
    first = random_sft(tiny_mlm_model, density=0.05, seed=0)
    first.save_pretrained(tmp_path)

    def write_partial_file_then_fail(tensors, filename, metadata=None):
        with open(filename, "wb") as file:
            file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(sft.serialization, "save_file", write_partial_file_then_fail)
    with pytest.raises(OSError, match="disk full"):
        random_sft(tiny_mlm_model, density=0.05, seed=1).save_pretrained(tmp_path)

    assert sorted(os.listdir(tmp_path)) == [SFT_WEIGHTS_NAME, SFT_CONFIG_NAME]
    assert_same_sft(first, SFT.from_pretrained(tmp_path))


def test_default_format_is_compact(tmp_path):
    generator = torch.Generator().manual_seed(0)
    dense = torch.randn(1000, 1000, generator=generator) * (
        torch.rand(1000, 1000, generator=generator) < 0.08
    )
    diff = SparseDiff.from_dense(dense)
    SFT(diffs={"weight": diff}).save_pretrained(tmp_path)
    bytes_per_entry = (tmp_path / SFT_WEIGHTS_NAME).stat().st_size / diff.nnz
    assert bytes_per_entry < 5.1


def test_missing_config_is_reported(tmp_path, tiny_mlm_model):
    random_sft(tiny_mlm_model, density=0.01, seed=0).save_pretrained(tmp_path)
    (tmp_path / SFT_CONFIG_NAME).unlink()
    with pytest.raises(SftFormatError, match=f"{SFT_CONFIG_NAME} is missing"):
        SFT.from_pretrained(tmp_path)


def test_newer_config_version_is_rejected(tmp_path, tiny_mlm_model):
    random_sft(tiny_mlm_model, density=0.01, seed=0).save_pretrained(tmp_path)
    path = tmp_path / SFT_CONFIG_NAME
    values = json.loads(path.read_text())
    values["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(values))
    with pytest.raises(SftFormatError, match="upgrade composable-sft"):
        SFT.from_pretrained(tmp_path)


def test_invalid_config_value_names_file_and_field(tmp_path, tiny_mlm_model):
    random_sft(tiny_mlm_model, density=0.01, seed=0).save_pretrained(tmp_path)
    path = tmp_path / SFT_CONFIG_NAME
    values = json.loads(path.read_text())
    values["kind"] = "vision"
    path.write_text(json.dumps(values))
    with pytest.raises(SftFormatError, match=r"sft_config\.json.*kind must be one of"):
        SFT.from_pretrained(tmp_path)


def test_safetensors_without_sft_metadata_is_rejected(tmp_path):
    save_file({"weight": torch.zeros(2)}, str(tmp_path / SFT_WEIGHTS_NAME))
    (tmp_path / SFT_CONFIG_NAME).write_text(SftConfig().to_json_string())
    with pytest.raises(SftFormatError, match="not an SFT file"):
        SFT.from_pretrained(tmp_path)


def test_unexpected_tensor_is_rejected(tmp_path):
    metadata = {"sft_diffs": "[]", "sft_format_version": "1"}
    save_file({"stray": torch.zeros(2)}, str(tmp_path / SFT_WEIGHTS_NAME), metadata=metadata)
    (tmp_path / SFT_CONFIG_NAME).write_text(SftConfig().to_json_string())
    with pytest.raises(SftFormatError, match="unexpected tensor 'stray'"):
        SFT.from_pretrained(tmp_path)


def test_corrupt_weights_file_is_rejected(tmp_path):
    (tmp_path / SFT_WEIGHTS_NAME).write_bytes(b"\x00" * 64)
    (tmp_path / SFT_CONFIG_NAME).write_text(SftConfig().to_json_string())
    with pytest.raises(SftFormatError, match="not a valid safetensors file"):
        SFT.from_pretrained(tmp_path)


def test_missing_path_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither an existing file or folder"):
        SFT.from_pretrained(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="contains no SFT"):
        SFT.from_pretrained(tmp_path)


def test_weights_file_path_loads_its_folder(tmp_path, tiny_mlm_model):
    original = random_sft(tiny_mlm_model, density=0.02, seed=0)
    original.save_pretrained(tmp_path)
    assert_same_sft(original, SFT.from_pretrained(tmp_path / SFT_WEIGHTS_NAME))


def test_unknown_file_format_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="file_format must be one of"):
        SFT().save_pretrained(tmp_path, file_format="pickle")


def test_missing_relative_path_reports_hub_failure(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such local file or folder, and downloading"):
        SFT.from_pretrained("no-such-folder/no-such-sft", local_files_only=True)


def test_values_length_mismatch_is_rejected(tmp_path):
    layout = '[{"name": "w", "shape": [10], "nnz": 2, "index_encoding": "uint8_gaps"}]'
    tensors = {
        "diffs.w.indices": torch.tensor([1, 3], dtype=torch.uint8),
        "diffs.w.values": torch.zeros(3),
    }
    metadata = {"sft_diffs": layout, "sft_format_version": "1"}
    save_file(tensors, str(tmp_path / SFT_WEIGHTS_NAME), metadata=metadata)
    (tmp_path / SFT_CONFIG_NAME).write_text(SftConfig().to_json_string())
    with pytest.raises(SftFormatError, match="diff 'w'.*2 entries"):
        SFT.from_pretrained(tmp_path)
