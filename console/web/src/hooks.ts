import { useEffect, useState } from 'react';
import { api } from './api';

/** useFetch GETs path (again every pollMs when set, and when path or bump changes). */
export function useFetch<T>(path: string | null, pollMs?: number, bump?: unknown): { data?: T; error?: unknown; loading: boolean } {
  const [res, setRes] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  useEffect(() => {
    if (!path) return;
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      try {
        const data = await api<T>('GET', path);
        if (!stop) setRes({ data, loading: false });
      } catch (error) {
        if (!stop) setRes((r) => ({ data: r.data, error, loading: false }));
      }
      if (!stop && pollMs) timer = setTimeout(run, pollMs);
    };
    void run();
    return () => {
      stop = true;
      if (timer) clearTimeout(timer);
    };
  }, [path, pollMs, bump]);
  return res;
}
