// API errors: each carries the HTTP code, the Kubernetes reason and a stable k8s4ai code,
// and renders as a metav1.Status so kubectl and client-node show it verbatim.
import type { FieldCause } from '../api/validate.ts';

export const StatusReason = {
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  MethodNotAllowed: 405,
  NotAcceptable: 406,
  AlreadyExists: 409,
  Conflict: 409,
  Expired: 410,
  Gone: 410,
  RequestEntityTooLarge: 413,
  UnsupportedMediaType: 415,
  Invalid: 422,
  TooManyRequests: 429,
  InternalError: 500,
  ServiceUnavailable: 503,
} as const;
export type StatusReason = keyof typeof StatusReason;

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: FieldCause[];
  retryAfterSeconds?: number;
}

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

export class ApiError extends Error {
  readonly reason: StatusReason;
  readonly statusCode: number;
  readonly code: string;
  readonly details: StatusDetails | undefined;
  constructor(reason: StatusReason, message: string, details?: StatusDetails) {
    super(message);
    this.name = 'ApiError';
    this.reason = reason;
    this.statusCode = StatusReason[reason];
    this.code = `K8S4AI_API_${reason.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`;
    this.details = details;
  }

  toStatus(): Status {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.statusCode,
    };
  }
}

/** `<kind>.<group> "<name>"` as Kubernetes writes resources in messages. */
export function qualified(resource: { plural: string; group: string }, name?: string): string {
  const res = resource.group ? `${resource.plural}.${resource.group}` : resource.plural;
  return name === undefined ? res : `${res} "${name}"`;
}

export const notFound = (resource: { plural: string; group: string; kind: string }, name: string) =>
  new ApiError('NotFound', `${qualified(resource, name)} not found`, { name, group: resource.group, kind: resource.plural });

export const alreadyExists = (resource: { plural: string; group: string; kind: string }, name: string) =>
  new ApiError('AlreadyExists', `${qualified(resource, name)} already exists`, { name, group: resource.group, kind: resource.plural });

export const conflict = (resource: { plural: string; group: string; kind: string }, name: string) =>
  new ApiError(
    'Conflict',
    `Operation cannot be fulfilled on ${qualified(resource, name)}: the object has been modified; please apply your changes to the latest version and try again`,
    { name, group: resource.group, kind: resource.plural },
  );

export function invalid(resource: { group: string; kind: string }, name: string, causes: FieldCause[]): ApiError {
  const summary = causes.map((c) => `${c.field}: ${c.message}`).join(', ');
  const what = resource.group ? `${resource.kind}.${resource.group}` : resource.kind;
  return new ApiError('Invalid', `${what} "${name}" is invalid: [${summary}]`, { name, group: resource.group, kind: resource.kind, causes });
}

export function successStatus(message = ''): Status {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', message, code: 200 };
}
