"""What the file says about itself: Content Credentials (C2PA), EXIF, PNG text chunks and XMP.

:func:`read_provenance` reads an upload's original bytes (never the decoded pixels: re-encoding drops all
of this) and returns a :class:`Provenance` whose ``summary`` is one plain sentence, e.g. "The file says it
was made with generative AI by ..." or "No provenance: most sites strip it, so this proves nothing."

Everything here treats the file as hostile:

* the whole file is read only if it is within the upload limit (``max_bytes``);
* C2PA is read by ``c2pa-python`` with network fetches off: a manifest stored on a server (a "remote
  manifest") is reported with its address, never fetched; no certificate revocation (OCSP) lookups;
* Pillow reads the metadata from the header only (no pixel decoding); it refuses compressed text chunks
  that would inflate beyond 1 MB (``PngImagePlugin.MAX_TEXT_CHUNK``): a decompression bomb becomes a note;
* XMP is parsed with ``defusedxml`` and refused when it declares a DTD (entity expansion, external
  entities: XXE), or is larger than ``MAX_XMP_BYTES``;
* text values are decoded leniently, stripped of control characters and cut to ``MAX_TEXT_CHARS``;
* GPS coordinates are never read out: only whether a location is present.

Every problem becomes a plain sentence in ``notes``; nothing here raises for a bad file.
"""
from __future__ import annotations

import io
import json
import logging
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import c2pa
from defusedxml import ElementTree as SafeElementTree
from defusedxml.common import DefusedXmlException
from PIL import Image, UnidentifiedImageError

from ..images import ALLOWED_FORMATS

log = logging.getLogger(__name__)

MAX_XMP_BYTES = 1_000_000  # XMP in a JPEG segment is at most 64 kB; real XMP packets are a few kB
MAX_TEXT_CHARS = 2000  # per value shown (a ComfyUI workflow can be 100 kB of JSON)
MIME_TYPES = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp",
              "GIF": "image/gif", "TIFF": "image/tiff"}
# c2pa-rs settings: never fetch a remote manifest or check revocation over the network
C2PA_OFFLINE = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
IPTC_SOURCE_TYPES = {  # https://cv.iptc.org/newscodes/digitalsourcetype/
    "trainedAlgorithmicMedia": "made by a generative AI model",
    "compositeWithTrainedAlgorithmicMedia": "partly made or edited with generative AI",
    "algorithmicMedia": "made by an algorithm, not a camera",
    "compositeSynthetic": "a composite that includes synthetic elements",
    "algorithmicallyEnhanced": "a capture enhanced by an algorithm",
    "digitalCapture": "captured by a digital camera",
    "computationalCapture": "captured by a camera with computational processing",
    "digitalArt": "digital art made by a person",
    "screenCapture": "a screenshot",
    "composite": "a composite of several images",
    "negativeFilm": "a scan of a film negative",
    "positiveFilm": "a scan of a slide",
    "print": "a scan of a print",
    "virtualRecording": "a recording of a virtual scene",
    "dataDrivenMedia": "generated from data",
}
AI_SOURCE_TYPES = {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia",
                   "compositeSynthetic"}
KNOWN_GENERATORS = ("Stable Diffusion", "ComfyUI", "Automatic1111", "InvokeAI", "Fooocus", "NovelAI", "Midjourney",
                    "DALL-E", "DALL·E", "ChatGPT", "OpenAI", "Firefly", "Imagen", "Gemini", "Flux", "Leonardo",
                    "Ideogram", "Runway", "Bing Image Creator", "Made with AI")
PNG_GENERATOR_KEYS = {"parameters": "Stable Diffusion web UI settings (prompt, sampler, seed)",
                      "prompt": "a ComfyUI prompt graph", "workflow": "a ComfyUI workflow",
                      "invokeai_metadata": "InvokeAI settings", "sd-metadata": "Stable Diffusion settings",
                      "Dream": "Stable Diffusion (dream) settings"}
EXIF_TAGS = {"make": 0x010F, "model": 0x0110, "software": 0x0131, "date": 0x0132}
EXIF_IFD, GPS_IFD, DATE_ORIGINAL = 0x8769, 0x8825, 0x9003
NO_PROVENANCE = "No provenance: most sites strip it, so this proves nothing."


@dataclass
class Provenance:
    """What the file declares. Empty fields mean "not present"; ``notes`` say what could not be read."""

    c2pa: dict[str, Any] | None = None
    exif: dict[str, Any] = field(default_factory=dict)
    png_text: dict[str, str] = field(default_factory=dict)
    xmp: dict[str, Any] = field(default_factory=dict)
    generator_hints: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: str = NO_PROVENANCE

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types, keys as ``python -m gauntlet.provenance FILE --json`` prints them."""
        return asdict(self)


# ----------------------------------------------------------------------------- text hygiene


def clean_text(value: object, limit: int = MAX_TEXT_CHARS) -> str:
    """Any metadata value as printable text: bytes decoded leniently, control characters dropped, cut short."""
    if isinstance(value, bytes):
        value = _decode_bytes(value)
    text = "".join(c if c in "\n\t" or unicodedata.category(c)[0] != "C" else " " for c in str(value))
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + f" … ({len(text) - limit:,} more characters)"


def _decode_bytes(data: bytes) -> str:
    """UTF-16 with a byte-order mark, else UTF-8, else Latin-1 (which decodes anything)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# ----------------------------------------------------------------------------- C2PA


def read_c2pa(data: bytes, mime_type: str) -> tuple[dict[str, Any] | None, list[str]]:
    """Content Credentials of the file, or None when it has none; plus notes on what could not be read."""
    try:
        reader = c2pa.Reader.try_create(mime_type, io.BytesIO(data), context=c2pa.Context(
            c2pa.Settings.from_dict(C2PA_OFFLINE)))
    except c2pa.C2paError as err:
        remote = re.search(r"remote manifests? from url (\S+)", str(err))
        if remote:
            return ({"present": True, "remote_url": remote.group(1), "validation_state": "not checked"},
                    ["The Content Credentials are stored on a server, not in the file; they were not fetched "
                     "(this app makes no network requests for uploads)."])
        log.info("Unreadable C2PA data: %s", err)
        return None, ["The file carries Content Credentials that could not be read (damaged or unsupported), "
                      "so they were ignored."]
    if reader is None:
        return None, []
    with reader:
        return _describe_manifest(reader), []


def _describe_manifest(reader: c2pa.Reader) -> dict[str, Any]:
    manifest = reader.get_active_manifest() or {}
    actions = [a for assertion in manifest.get("assertions", []) if assertion.get("label", "").startswith(
        "c2pa.actions") for a in (assertion.get("data") or {}).get("actions", [])]
    source_types = sorted({str(a["digitalSourceType"]).rsplit("/", 1)[-1] for a in actions
                           if a.get("digitalSourceType")})
    info = manifest.get("claim_generator_info") or [{}]
    generator = " ".join(str(info[0].get(k, "")) for k in ("name", "version")).strip() or manifest.get(
        "claim_generator", "")
    agents = sorted({clean_text(_agent_name(a["softwareAgent"]), 200) for a in actions if a.get("softwareAgent")})
    signature = manifest.get("signature_info") or {}
    return {"present": True, "validation_state": reader.get_validation_state() or "unknown",
            "claim_generator": clean_text(generator, 200), "software_agents": agents,
            "actions": [clean_text(a.get("action", ""), 100) for a in actions],
            "digital_source_types": source_types,
            "signer": clean_text(signature.get("issuer") or signature.get("common_name") or "", 200),
            "remote_url": None}


def _agent_name(agent: object) -> str:
    return agent.get("name", "") if isinstance(agent, dict) else str(agent)


# ----------------------------------------------------------------------------- EXIF, PNG text, XMP (Pillow)


def read_exif(image: Image.Image) -> dict[str, Any]:
    """Camera make and model, software and date; GPS only as ``location_present`` (never the coordinates)."""
    exif = image.getexif() if image.format == "TIFF" else Image.Exif()
    raw = image.info.get("exif")
    if image.format != "TIFF" and raw:
        exif.load(raw if raw.startswith(b"Exif") else b"Exif\x00\x00" + raw)
    found = {name: clean_text(exif[tag], 200) for name, tag in EXIF_TAGS.items() if exif.get(tag)}
    original = exif.get_ifd(EXIF_IFD).get(DATE_ORIGINAL)
    if original:
        found["date"] = clean_text(original, 200)
    if exif.get(GPS_IFD) is not None or exif.get_ifd(GPS_IFD):
        found["location_present"] = True
    return {k: v for k, v in found.items() if v}


def read_png_text(image: Image.Image) -> dict[str, str]:
    """The PNG's text chunks before the pixels (tEXt, zTXt, iTXt), each value cleaned and cut short."""
    if image.format != "PNG":
        return {}
    skip = {"exif", "xmp", "XML:com.adobe.xmp", "icc_profile"}
    return {clean_text(key, 100): clean_text(value) for key, value in image.info.items()
            if key not in skip and isinstance(value, str)}


def read_xmp(image: Image.Image) -> tuple[dict[str, Any], list[str]]:
    """XMP's DigitalSourceType, CreatorTool and provenance link, parsed safely; notes on what was refused."""
    raw = image.info.get("xmp") or (image.tag_v2.get(700) if image.format == "TIFF" else None)
    if not raw:
        return {}, []
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if len(raw) > MAX_XMP_BYTES:
        return {}, [f"The XMP metadata block is unusually large ({len(raw) / 1e6:,.1f} MB) and was not read."]
    try:
        root = SafeElementTree.fromstring(raw, forbid_dtd=True)
    except DefusedXmlException:
        return {}, ["The XMP metadata declares a document type (a feature that can make a reader fetch files "
                    "from elsewhere), so it was not read."]
    except Exception:  # noqa: BLE001 - any XML parser failure means "unreadable", nothing more
        return {}, ["The XMP metadata is damaged and was not read."]
    return _xmp_fields(root), []


def _xmp_fields(root) -> dict[str, Any]:
    """Values of the XMP properties we use, wherever they are (attribute or element, any namespace)."""
    wanted = {"DigitalSourceType": "digital_source_type", "CreatorTool": "creator_tool", "provenance": "provenance"}
    found: dict[str, Any] = {}
    for element in root.iter():
        pairs = [(element.tag, element.text)] + list(element.attrib.items())
        for name, value in pairs:
            local = str(name).rsplit("}", 1)[-1]
            if local in wanted and value and value.strip():
                found.setdefault(wanted[local], clean_text(value, 300))
    if "digital_source_type" in found:
        found["digital_source_type"] = found["digital_source_type"].rsplit("/", 1)[-1]
    return found


def read_pillow_metadata(data: bytes, result: Provenance) -> str | None:
    """Fill EXIF, PNG text and XMP from the header; returns the MIME type for C2PA (None: not an image)."""
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
            mime_type = MIME_TYPES.get(image.format or "")
            for attribute, read, name in (("exif", read_exif, "EXIF"), ("png_text", read_png_text, "text")):
                try:
                    setattr(result, attribute, read(image))
                except Exception:  # noqa: BLE001 - a damaged block is skipped, the others still count
                    result.notes.append(f"The file's {name} metadata is damaged and was not read.")
            result.xmp, notes = read_xmp(image)
            result.notes.extend(notes)
            return mime_type
    except UnidentifiedImageError:
        result.notes.append("This file is not an image we can read, so its metadata was not read.")
    except Exception as err:  # noqa: BLE001 - e.g. Pillow's refusal of a text chunk that inflates beyond 1 MB
        log.info("Unreadable metadata: %s: %s", type(err).__name__, err)
        result.notes.append("The file's metadata could not be read: it is damaged, or holds a compressed block "
                            "too large to expand safely. It was ignored.")
    return None


# ----------------------------------------------------------------------------- the whole reading


def read_provenance(source: str | Path | bytes, max_bytes: int | None = None) -> Provenance:
    """Read what the file at ``source`` (or its bytes) says about its origin; never raises for a bad file.

    ``max_bytes`` is the upload limit: a larger file is not read at all (its size is checked before).
    """
    result = Provenance()
    data = _read_bytes(source, max_bytes, result)
    if data is None:
        result.summary = "The file's metadata was not read. " + NO_PROVENANCE
        return result
    mime_type = read_pillow_metadata(data, result)
    if mime_type:
        result.c2pa, notes = read_c2pa(data, mime_type)
        result.notes.extend(notes)
    result.generator_hints = generator_hints(result)
    result.summary = summarise(result)
    return result


def _read_bytes(source: str | Path | bytes, max_bytes: int | None, result: Provenance) -> bytes | None:
    if isinstance(source, (bytes, bytearray)):
        size = len(source)
    else:
        try:
            size = Path(source).stat().st_size
        except OSError:
            result.notes.append("The file could not be found or opened.")
            return None
    if max_bytes is not None and size > max_bytes:
        result.notes.append(f"The file is larger than the upload limit ({max_bytes / 1e6:,.0f} MB).")
        return None
    return bytes(source) if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()


def generator_hints(result: Provenance) -> list[str]:
    """Each place in the metadata that names an AI generator or its settings, as a short phrase."""
    hints = []
    manifest = result.c2pa or {}
    for code in manifest.get("digital_source_types", []):
        if code in AI_SOURCE_TYPES:
            hints.append(f"Content Credentials: {IPTC_SOURCE_TYPES[code]} ({code})")
    xmp_type = result.xmp.get("digital_source_type", "")
    if xmp_type in AI_SOURCE_TYPES:
        hints.append(f"XMP: {IPTC_SOURCE_TYPES[xmp_type]} ({xmp_type})")
    hints += [f"PNG text '{key}': {what}" for key, what in PNG_GENERATOR_KEYS.items() if key in result.png_text]
    named = {"Content Credentials tool": " ".join([manifest.get("claim_generator", ""),
                                                   *manifest.get("software_agents", [])]),
             "EXIF software": result.exif.get("software", ""), "XMP creator tool": result.xmp.get("creator_tool", ""),
             "PNG text 'Software'": result.png_text.get("Software", "")}
    for where, text in named.items():
        tool = next((g for g in KNOWN_GENERATORS if g.lower() in text.lower()), None)
        if tool:
            hints.append(f"{where} names {tool}")
    return hints


def summarise(result: Provenance) -> str:
    """One sentence: what the file says, and what that does not prove."""
    manifest = result.c2pa or {}
    if manifest.get("remote_url"):
        return ("The file points to Content Credentials stored online, which were not fetched; "
                "check them at contentcredentials.org/verify.")
    if result.generator_hints:
        signed = _signature_words(manifest.get("validation_state", "")) if manifest else ""
        return (f"The file says it was made by {_maker(result)}{signed} ({result.generator_hints[0]}). "
                "Metadata can be added or removed by anyone: it tells you what the file claims, not what is true.")
    if manifest:
        tool = manifest.get("claim_generator") or "an unnamed tool"
        return (f"The file carries Content Credentials from {tool}{_signature_words(manifest['validation_state'])} "
                "and they do not say AI was used; they show who signed, not that the picture is true.")
    camera = " ".join(v for k, v in result.exif.items() if k in ("make", "model"))
    if camera:
        return (f"The file says it was taken with a {camera}, but EXIF is easy to edit or copy, "
                "so this proves nothing on its own.")
    return NO_PROVENANCE


def _maker(result: Provenance) -> str:
    """The generator the metadata names, else "generative AI"."""
    manifest = result.c2pa or {}
    for name in [*manifest.get("software_agents", []), result.exif.get("software", ""),
                 result.xmp.get("creator_tool", ""), result.png_text.get("Software", "")]:
        if name:
            return name
    if "parameters" in result.png_text:
        return "Stable Diffusion"
    return "ComfyUI" if {"prompt", "workflow"} & set(result.png_text) else "generative AI"


def _signature_words(state: str) -> str:
    return {"Trusted": ", signed by a trusted signer",
            "Valid": ", with an intact signature from a signer this app cannot vouch for",
            "Invalid": ", but its signature does not match: the file was changed after signing"}.get(state, "")


def to_json_text(result: Provenance) -> str:
    return json.dumps(result.to_json(), indent=2, ensure_ascii=False)
