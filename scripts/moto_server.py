"""Starts moto's server with two corrections so it behaves like AWS.

1. KMS: moto 5.2.5 ignores `MessageType=DIGEST` on Sign and Verify and hashes the digest
   again, so a signature over a locally computed SHA-256 digest (what Rampart sends, as the KMS
   API documents) would not verify. DIGEST here means "already hashed", exactly as AWS does.
2. DynamoDB: moto's TransactWriteItems checks and applies its writes one by one and, when one
   fails, restores a copy of the whole table taken when it began, while the server's other
   threads keep writing. Two concurrent requests can then interleave, and a failed transaction
   can undo another request's committed write. AWS runs each transaction atomically and in
   isolation; here every DynamoDB read and write takes one lock, so a transaction is never seen half
   done and never rolls back anyone else's write. moto also ignores ClientRequestToken, which the
   SDK sets on every TransactWriteItems and keeps across its retries: AWS answers a repeat of a
   token it saw succeed in the last 10 minutes with success and writes nothing again, so a retry
   after a lost answer does not fail its own conditions. Here too.
3. KMS: moto encrypts, decrypts and signs with a disabled key; AWS refuses with
   DisabledException. Here it refuses too, so a test can have KMS refuse a call.
4. Secrets Manager: when UpdateSecretVersionStage moves AWSCURRENT (a rotation's finishSecret),
   moto moves the label but GetSecretValue without a stage still answers with the version that
   had it, which moto tracks apart from the labels. AWS answers with the version labelled
   AWSCURRENT; here too.

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

    import json
    import time

    from moto.core.exceptions import JsonRESTError
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoHandler

    transact = DynamoHandler.transact_write_items
    succeeded = {}  # ClientRequestToken -> (the request's items, when)

    def idempotent_transact(self):
        token = self.body.get("ClientRequestToken")
        if not token:
            return transact(self)
        # Binary attributes arrive decoded, as bytes: compared by their hex.
        items = json.dumps(self.body["TransactItems"], sort_keys=True, default=bytes.hex)
        with lock:
            seen = succeeded.get(token)
            if seen and time.time() - seen[1] < 600:
                if seen[0] != items:
                    raise JsonRESTError(
                        "IdempotentParameterMismatchException",
                        "The ClientRequestToken was used with other TransactItems.",
                    )
                return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
            result = transact(self)
            succeeded[token] = (items, time.time())
            return result

    DynamoHandler.transact_write_items = idempotent_transact


def _refuse_disabled_keys() -> None:
    from moto.core.exceptions import JsonRESTError
    from moto.kms.models import KmsBackend

    def check(backend, key_id):
        key = backend.keys[backend.any_id_to_key_id(key_id)]
        if not key.enabled:
            raise JsonRESTError("DisabledException", f"{key.arn} is disabled.")

    def before(original):
        def call(self, key_id, *args, **kwargs):
            check(self, key_id)
            return original(self, key_id, *args, **kwargs)

        return call

    original_decrypt = KmsBackend.decrypt

    def decrypt(self, *args, **kwargs):
        plaintext, arn = original_decrypt(self, *args, **kwargs)
        check(self, arn)
        return plaintext, arn

    KmsBackend.encrypt = before(KmsBackend.encrypt)  # GenerateDataKey and ReEncrypt go through it
    KmsBackend.sign = before(KmsBackend.sign)
    KmsBackend.decrypt = decrypt


def _current_follows_its_label() -> None:
    from moto.secretsmanager.models import SecretsManagerBackend

    original = SecretsManagerBackend.update_secret_version_stage

    def update_secret_version_stage(self, secret_id, version_stage, remove_from_version_id, move_to_version_id):
        result = original(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
        if version_stage == "AWSCURRENT" and move_to_version_id:
            self.secrets[secret_id].default_version_id = move_to_version_id
        return result

    SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage


_track_message_type("sign")
_track_message_type("verify")
_patch_rsa()
_patch_ecdsa()
_serialize_dynamodb_writes()
_refuse_disabled_keys()
_current_follows_its_label()

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
