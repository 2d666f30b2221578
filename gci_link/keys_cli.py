"""``ims keys``: run the network CA (create, issue station and IDC keys, revoke) and list a trust store."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from gci_link.keys import SIGNING_ALGORITHMS, CertificateAuthority, KeyMaterialError, Role, TrustStore
from gci_link.keys.authority import TRUST_DIR
from gci_link.keys.certificates import read_public_key
from gci_link.keys.trust import IDC_DIR
from gci_link.texttable import columns


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("keys", help="signing keys: network CA, station certificates, trust store")
    sub = parser.add_subparsers(dest="keys_command", required=True, metavar="ACTION")

    init = sub.add_parser("ca-init", help="create a network CA and its trust store in DIR")
    init.add_argument("dir", type=Path)
    init.add_argument("--name", default="IMS network CA", help="CA subject common name")
    init.add_argument("--algorithm", choices=SIGNING_ALGORITHMS, default="ecdsa-p256")
    init.add_argument("--days", type=int, default=3650, help="CA validity (default 3650)")
    init.set_defaults(func=_ca_init)

    issue = sub.add_parser("issue", help="new key and certificate for a station (also how to rotate)")
    issue.add_argument("dir", type=Path)
    issue.add_argument("station")
    issue.add_argument("--algorithm", choices=SIGNING_ALGORITHMS, default="ecdsa-p256")
    issue.add_argument("--days", type=int, default=365, help="certificate validity (default 365)")
    issue.set_defaults(func=_issue)

    issue_idc = sub.add_parser("issue-idc", help="new key and certificate for an IDC receiver's own frames")
    issue_idc.add_argument("dir", type=Path)
    issue_idc.add_argument("name", nargs="?", default="IDC", help="its responder_name (default IDC)")
    issue_idc.add_argument("--algorithm", choices=SIGNING_ALGORITHMS, default="ecdsa-p256")
    issue_idc.add_argument("--days", type=int, default=365, help="certificate validity (default 365)")
    issue_idc.set_defaults(func=_issue_idc)

    imp = sub.add_parser("import", help="trust a legacy station's public key under the key id it signs with")
    imp.add_argument("dir", type=Path)
    imp.add_argument("station")
    imp.add_argument("key_id", type=int, help="the key id the station's frames carry")
    imp.add_argument("public_key", type=Path, help="its public key, PEM (DSA, ECDSA P-256 or Ed25519)")
    imp.add_argument("--days", type=int, default=365, help="how long it is trusted (default 365)")
    imp.set_defaults(func=_import)

    revoke = sub.add_parser("revoke", help="revoke the certificate of a key id")
    revoke.add_argument("dir", type=Path)
    revoke.add_argument("key_id", type=int)
    revoke.set_defaults(func=_revoke)

    listing = sub.add_parser("list", help="table of the keys in a CA directory or a trust store")
    listing.add_argument("dir", type=Path)
    listing.set_defaults(func=_list)


def _fail(message: str) -> int:
    print(f"ims keys: {message}", file=sys.stderr)
    return 1


def _ca_init(args: argparse.Namespace) -> int:
    try:
        ca = CertificateAuthority.create(args.dir, args.name, args.algorithm, args.days)
    except (KeyMaterialError, ValueError) as exc:
        return _fail(str(exc))
    print(f"created CA {args.name!r} in {ca.root}; copy {ca.trust_dir} to the receivers")
    return 0


def _issue(args: argparse.Namespace) -> int:
    try:
        issued = CertificateAuthority.open(args.dir).issue(args.station, args.algorithm, args.days)
    except (KeyMaterialError, ValueError) as exc:
        return _fail(str(exc))
    print(f"issued key id {issued.key_id} for {issued.station}; install {issued.bundle} on the station")
    return 0


def _issue_idc(args: argparse.Namespace) -> int:
    try:
        issued = CertificateAuthority.open(args.dir).issue_idc(args.name, args.algorithm, args.days)
    except (KeyMaterialError, ValueError) as exc:
        return _fail(str(exc))
    print(f"issued key id {issued.key_id} for IDC {issued.station}; install {issued.bundle} on the receiver "
          f"(idc.key_bundle), then copy the trust store to the stations")
    return 0


def _import(args: argparse.Namespace) -> int:
    try:
        public_key = read_public_key(args.public_key)
        ca = CertificateAuthority.open(args.dir)
        path = ca.import_key(args.station, args.key_id, public_key, args.days)
    except (KeyMaterialError, ValueError) as exc:
        return _fail(str(exc))
    print(f"imported key id {args.key_id} for {args.station} as {path}; copy the trust store to the "
          "receivers and reload them")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    try:
        station = CertificateAuthority.open(args.dir).revoke(args.key_id)
    except KeyError as exc:
        return _fail(str(exc.args[0]))
    except (KeyMaterialError, ValueError) as exc:
        return _fail(str(exc))
    print(f"revoked key id {args.key_id} of {station}; copy the trust store to the receivers")
    return 0


def _date(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _list(args: argparse.Namespace) -> int:
    trust_dir = args.dir / TRUST_DIR if (args.dir / TRUST_DIR).is_dir() else args.dir
    try:
        keys = TrustStore.load(trust_dir).keys
        has_idc = any((trust_dir / IDC_DIR).glob("*.pem"))
        idc_keys = TrustStore.load(trust_dir, role=Role.IDC).keys if has_idc else []
    except KeyMaterialError as exc:
        return _fail(str(exc))
    rows = [("KEY ID", "STATION", "ALGORITHM", "NOT BEFORE", "NOT AFTER", "REVOKED")]
    for key in keys + idc_keys:
        revoked = "-" if key.revoked_ns is None else _date(key.revoked_ns)
        algorithm = key.algorithm + (" (legacy)" if key.legacy else " (IDC)" if key in idc_keys else "")
        rows.append(
            (
                str(key.key_id),
                key.station,
                algorithm,
                _date(key.not_before_ns),
                _date(key.not_after_ns),
                revoked,
            )
        )
    print("\n".join(columns(rows)))
    return 0
