"""Starts moto's server with two corrections so it behaves like AWS.

1. KMS: moto 5.2.5 ignores `MessageType=DIGEST` on Sign and Verify and hashes the digest
   again, so a signature over a locally computed SHA-256 digest (what Rampart sends, as the KMS
   API documents) would not verify. DIGEST here means "already hashed", exactly as AWS does.
2. DynamoDB: moto's TransactWriteItems checks and applies its writes one by one and, when one
   fails, restores a copy of the whole table taken when it began, while the server's other
   threads keep writing. Two concurrent requests can then interleave, and a failed transaction
   can undo another request's committed write. AWS runs each transaction atomically and in
   isolation; here every DynamoDB read and write takes one lock, so a transaction is never seen half
   done and never rolls back anyone else's write.

Otherwise moto runs unchanged. Usage is that of `moto_server`.
"""

import sys
import threading

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from moto.kms import responses
from moto.kms import utils as kms_utils

_request = threading.local()


def _is_digest() -> bool:
    return getattr(_request, "digest", False)


def _track_message_type(name: str) -> None:
    original = getattr(responses.KmsResponse, name)

    def handler(self):
        _request.digest = self._get_param("MessageType") == "DIGEST"
        try:
            return original(self)
        finally:
            _request.digest = False

    setattr(responses.KmsResponse, name, handler)


def _patch_rsa() -> None:
    key_class = kms_utils.RSAPrivateKey
    original_sign, original_verify = key_class.sign, key_class.verify
    padding_and_hash = key_class._RSAPrivateKey__padding_and_hash_algorithm

    def sign(self, message, signing_algorithm):
        if not _is_digest():
            return original_sign(self, message, signing_algorithm)
        pad, hash_algorithm = padding_and_hash(self, signing_algorithm)
        return self.private_key.sign(message, pad, Prehashed(hash_algorithm))

    def verify(self, message, signature, signing_algorithm):
        if not _is_digest():
            return original_verify(self, message, signature, signing_algorithm)
        pad, hash_algorithm = padding_and_hash(self, signing_algorithm)
        try:
            self.private_key.public_key().verify(signature, message, pad, Prehashed(hash_algorithm))
            return True
        except Exception:
            return False

    key_class.sign, key_class.verify = sign, verify


def _patch_ecdsa() -> None:
    key_class = kms_utils.ECDSAPrivateKey
    original_sign, original_verify = key_class.sign, key_class.verify
    hash_for = key_class._ECDSAPrivateKey__hash_algorithm

    def sign(self, message, signing_algorithm):
        if not _is_digest():
            return original_sign(self, message, signing_algorithm)
        return self.private_key.sign(message, ec.ECDSA(Prehashed(hash_for(self, signing_algorithm))))

    def verify(self, message, signature, signing_algorithm):
        if not _is_digest():
            return original_verify(self, message, signature, signing_algorithm)
        try:
            self.private_key.public_key().verify(
                signature, message, ec.ECDSA(Prehashed(hash_for(self, signing_algorithm)))
            )
            return True
        except Exception:
            return False

    key_class.sign, key_class.verify = sign, verify


def _serialize_dynamodb_writes() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()  # re-entrant: a transaction's writes go through put_item and friends

    def locked(original):
        def write(self, *args, **kwargs):
            with lock:
                return original(self, *args, **kwargs)

        return write

    for name in ("transact_write_items", "put_item", "update_item", "delete_item", "get_item", "query"):
        setattr(DynamoDBBackend, name, locked(getattr(DynamoDBBackend, name)))


_track_message_type("sign")
_track_message_type("verify")
_patch_rsa()
_patch_ecdsa()
_serialize_dynamodb_writes()

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
