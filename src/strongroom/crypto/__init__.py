"""Key hierarchy and field encryption: master keys, key wrapping, field envelopes, blind index."""

from strongroom.crypto.blind_index import BlindIndex, normalize
from strongroom.crypto.dek_cache import DekCache
from strongroom.crypto.envelope import (
    FieldCipher,
    decrypt_field,
    encrypt_field,
    envelope_dek_version,
    envelope_from_text,
    envelope_to_text,
    field_aad,
)
from strongroom.crypto.errors import CryptoError, IntegrityError, KeyConfigError, KeyUnavailable
from strongroom.crypto.master import (
    FileKeySource,
    MasterKeys,
    parse_master_key,
    parse_master_keys,
    stretch_passphrase,
)
from strongroom.crypto.wrapping import (
    KeyWrapper,
    LocalKeyWrapper,
    WrappedKey,
    subject_key_aad,
    tenant_root_key_aad,
)

__all__ = [
    "BlindIndex",
    "CryptoError",
    "DekCache",
    "FieldCipher",
    "FileKeySource",
    "IntegrityError",
    "KeyConfigError",
    "KeyUnavailable",
    "KeyWrapper",
    "LocalKeyWrapper",
    "MasterKeys",
    "WrappedKey",
    "decrypt_field",
    "encrypt_field",
    "envelope_dek_version",
    "envelope_from_text",
    "envelope_to_text",
    "field_aad",
    "normalize",
    "parse_master_key",
    "parse_master_keys",
    "stretch_passphrase",
    "subject_key_aad",
    "tenant_root_key_aad",
]
