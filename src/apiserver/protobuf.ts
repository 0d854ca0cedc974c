// Just enough of Kubernetes' protobuf wire format to read the bodies stock kubectl sends
// as `application/vnd.kubernetes.protobuf`. kubectl's generator commands use typed
// clients for built-in kinds and always encode those as protobuf, with no JSON fallback
// (`kubectl create namespace team-x` POSTs a protobuf Namespace). The envelope is the
// 4-byte magic "k8s\0" followed by a runtime.Unknown message:
//   Unknown   { 1: TypeMeta{1: apiVersion, 2: kind}, 2: raw (the object), 3: contentEncoding, 4: contentType }
//   Namespace { 1: ObjectMeta, 2: NamespaceSpec{1: repeated finalizers}, 3: NamespaceStatus }
//   ObjectMeta{ 1: name, 2: generateName, 3: namespace, 11: labels (map), 12: annotations (map), 14: repeated finalizers, … }
// (k8s.io/api/core/v1/generated.proto, k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto).
// Only Namespace is decoded: it is the one core kind kubectl creates from a generator.
// Responses stay JSON, which client-go accepts whatever it asked for.
import { ApiError } from './errors.ts';

export const PROTOBUF_CONTENT_TYPE = 'application/vnd.kubernetes.protobuf';
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

interface Field {
  no: number;
  wire: number;
  /** Length-delimited payload (wire type 2). */
  bytes?: Buffer;
  /** Varint value (wire type 0). */
  varint?: bigint;
}

function malformed(what: string): ApiError {
  return new ApiError('BadRequest', `the protobuf request body is malformed: ${what}`);
}

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw malformed('truncated varint');
    const b = buf[pos++]!;
    result |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) return [result, pos];
    shift += 7n;
    if (shift > 63n) throw malformed('varint too long');
  }
}

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [tag, next] = readVarint(buf, pos);
    pos = next;
    const no = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (wire === 0) {
      const [v, p] = readVarint(buf, pos);
      out.push({ no, wire, varint: v });
      pos = p;
    } else if (wire === 2) {
      const [len, p] = readVarint(buf, pos);
      const end = p + Number(len);
      if (end > buf.length) throw malformed('truncated field');
      out.push({ no, wire, bytes: buf.subarray(p, end) });
      pos = end;
    } else if (wire === 1) {
      pos += 8;
    } else if (wire === 5) {
      pos += 4;
    } else {
      throw malformed(`unsupported wire type ${wire}`);
    }
  }
  if (pos !== buf.length) throw malformed('truncated field');
  return out;
}

const str = (f: Field) => (f.bytes ?? Buffer.alloc(0)).toString('utf8');

function mapEntry(f: Field): [string, string] {
  let key = '';
  let value = '';
  for (const e of fields(f.bytes ?? Buffer.alloc(0))) {
    if (e.no === 1) key = str(e);
    if (e.no === 2) value = str(e);
  }
  return [key, value];
}

function objectMeta(buf: Buffer): Record<string, unknown> {
  const meta: Record<string, unknown> = {};
  const labels: Record<string, string> = {};
  const annotations: Record<string, string> = {};
  const finalizers: string[] = [];
  for (const f of fields(buf)) {
    if (f.wire !== 2) continue;
    // proto3: an empty string is the same as absent.
    if (f.no === 1 && f.bytes!.length) meta.name = str(f);
    else if (f.no === 2 && f.bytes!.length) meta.generateName = str(f);
    else if (f.no === 3 && f.bytes!.length) meta.namespace = str(f);
    else if (f.no === 6 && f.bytes!.length) meta.resourceVersion = str(f);
    else if (f.no === 11) {
      const [k, v] = mapEntry(f);
      labels[k] = v;
    } else if (f.no === 12) {
      const [k, v] = mapEntry(f);
      annotations[k] = v;
    }
    else if (f.no === 14) finalizers.push(str(f));
  }
  if (Object.keys(labels).length) meta.labels = labels;
  if (Object.keys(annotations).length) meta.annotations = annotations;
  if (finalizers.length) meta.finalizers = finalizers;
  return meta;
}

/** Decodes a protobuf request body into the JSON object the registry expects (Namespace only). */
export function decodeProtobufBody(body: Buffer): unknown {
  if (body.length < MAGIC.length || !body.subarray(0, MAGIC.length).equals(MAGIC)) throw malformed('missing the "k8s\\0" envelope');
  let apiVersion = '';
  let kind = '';
  let raw: Buffer | undefined;
  for (const f of fields(body.subarray(MAGIC.length))) {
    if (f.no === 1 && f.wire === 2) {
      for (const t of fields(f.bytes!)) {
        if (t.no === 1) apiVersion = str(t);
        if (t.no === 2) kind = str(t);
      }
    } else if (f.no === 2 && f.wire === 2) {
      raw = f.bytes;
    } else if (f.no === 3 && f.wire === 2 && f.bytes!.length) {
      throw new ApiError('UnsupportedMediaType', `protobuf bodies with content encoding "${str(f)}" are not supported; send JSON`);
    }
  }
  if (apiVersion !== 'v1' || kind !== 'Namespace') {
    throw new ApiError(
      'UnsupportedMediaType',
      `protobuf bodies are accepted for v1 Namespace only, not ${apiVersion || '?'} ${kind || '?'} - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json`,
    );
  }
  const obj: Record<string, unknown> = { apiVersion, kind, metadata: {} };
  for (const f of fields(raw ?? Buffer.alloc(0))) {
    if (f.wire !== 2) continue;
    if (f.no === 1) obj.metadata = objectMeta(f.bytes!);
    if (f.no === 2) {
      const finalizers = fields(f.bytes!).filter((s) => s.no === 1).map(str);
      if (finalizers.length) obj.spec = { finalizers };
    }
    // 3: status is ignored on create and update.
  }
  return obj;
}
