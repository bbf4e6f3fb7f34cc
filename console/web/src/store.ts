// The console's client state: the objects the user may see, kept current by the
// /api/v1/stream, plus recent CloudEvents. Pages read it with useStore.
import { useSyncExternalStore } from 'react';
import { api, ApiError, nsPath } from './api';
import type { Application, CloudEvent, Device, Gateway, Kind } from './types';
import { openStream } from './stream';

export type ByKey<T> = Record<string, T>;

export interface State {
  namespace: string;
  devices: ByKey<Device>;
  applications: ByKey<Application>;
  gateways: ByKey<Gateway>;
  loaded: Record<Kind, boolean>;
  errors: Partial<Record<Kind, ApiError>>;
  /** newest first, at most maxCloudEvents */
  cloudEvents: CloudEvent[];
  stream: 'connecting' | 'live' | 'reconnecting' | 'refused';
  streamError?: string;
}

export const maxCloudEvents = 300;

const initial = (namespace: string): State => ({
  namespace,
  devices: {},
  applications: {},
  gateways: {},
  loaded: { Device: false, Application: false, Gateway: false },
  errors: {},
  cloudEvents: [],
  stream: 'connecting',
});

let state: State = initial(sessionStorage.getItem('wasmbed.namespace') ?? '');
const listeners = new Set<() => void>();

function set(f: (s: State) => State): void {
  state = f(state);
  listeners.forEach((l) => l());
}

export function useStore<T>(select: (s: State) => T): T {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => select(state),
  );
}

export function getState(): State {
  return state;
}

export const keyOf = (o: { metadata: { namespace: string; name: string } }) => `${o.metadata.namespace}/${o.metadata.name}`;

const slot = { Device: 'devices', Application: 'applications', Gateway: 'gateways' } as const;
const plural = slot;

export function setNamespace(ns: string): void {
  sessionStorage.setItem('wasmbed.namespace', ns);
  set(() => initial(ns));
}

/** load (re)reads a kind's list. */
export async function load(kind: Kind): Promise<void> {
  const ns = state.namespace;
  try {
    const list = await api<{ items: (Device | Application | Gateway)[] }>('GET', nsPath(plural[kind], ns));
    const m: ByKey<Device | Application | Gateway> = {};
    for (const o of list.items ?? []) m[keyOf(o)] = o;
    if (state.namespace !== ns) return;
    set((s) => ({ ...s, [slot[kind]]: m, loaded: { ...s.loaded, [kind]: true }, errors: { ...s.errors, [kind]: undefined } }));
  } catch (e) {
    if (state.namespace !== ns) return;
    set((s) => ({ ...s, loaded: { ...s.loaded, [kind]: true }, errors: { ...s.errors, [kind]: e as ApiError } }));
  }
}

export const loadAll = () => Promise.all((['Device', 'Application', 'Gateway'] as Kind[]).map(load));

/** upsert applies a watch change (or an API answer) to the state. */
export function upsert(kind: Kind, type: string, obj: Device | Application | Gateway): void {
  set((s) => {
    const m = { ...(s[slot[kind]] as ByKey<typeof obj>) };
    if (type === 'DELETED') delete m[keyOf(obj)];
    else {
      const cur = m[keyOf(obj)];
      // Ignore an older version arriving after a newer one.
      if (cur && Number(cur.metadata.resourceVersion) > Number(obj.metadata.resourceVersion)) return s;
      m[keyOf(obj)] = obj;
    }
    return { ...s, [slot[kind]]: m };
  });
}

export function remove(kind: Kind, namespace: string, name: string): void {
  set((s) => {
    const m = { ...(s[slot[kind]] as ByKey<unknown>) };
    delete m[`${namespace}/${name}`];
    return { ...s, [slot[kind]]: m };
  });
}

/**
 * live keeps the stream open until signal aborts: it reloads the lists whenever the
 * stream (re)starts, applies changes, and reconnects after a failure.
 */
export async function live(token: string, signal: AbortSignal): Promise<void> {
  let delay = 1000;
  while (!signal.aborted) {
    const ns = state.namespace;
    const q = ns ? `?namespace=${encodeURIComponent(ns)}` : '';
    try {
      await openStream(`/api/v1/stream${q}`, token, (m) => {
        const data = JSON.parse(m.data);
        switch (m.event) {
          case 'ready':
            delay = 1000;
            set((s) => ({ ...s, stream: 'live', streamError: undefined }));
            void loadAll();
            break;
          case 'change':
            upsert(data.kind, data.type, data.object);
            break;
          case 'resync':
            void load(data.kind);
            break;
          case 'cloudevent':
            set((s) => ({ ...s, cloudEvents: [data as CloudEvent, ...s.cloudEvents].slice(0, maxCloudEvents) }));
            break;
          case 'dropped':
            set((s) => ({ ...s, streamError: `the console dropped this stream: ${data.reason}` }));
            break;
        }
      }, signal);
      if (signal.aborted) return;
      set((s) => ({ ...s, stream: 'reconnecting' }));
    } catch (e) {
      if (signal.aborted) return;
      const status = (e as { status?: number }).status;
      if (status === 401 || status === 403) {
        set((s) => ({ ...s, stream: 'refused', streamError: (e as Error).message }));
        void loadAll();
        return;
      }
      set((s) => ({ ...s, stream: 'reconnecting', streamError: (e as Error).message }));
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 15000);
  }
}
