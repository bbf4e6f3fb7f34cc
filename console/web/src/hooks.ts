import { QueryClient, keepPreviousData, useQuery } from '@tanstack/react-query';
import { ApiError, api } from './api';

/** newQueryClient is the console's TanStack Query client: a 4xx is not retried (the
 * request was refused, asking again changes nothing), anything else twice; refetching on
 * window focus is off, since the live stream and the polls keep data current. */
export function newQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        retry: (failures, error) => !(error instanceof ApiError && error.status >= 400 && error.status < 500) && failures < 2,
        refetchOnWindowFocus: false,
      },
    },
  });
}

/** useFetch GETs path through TanStack Query (again every pollMs when set, and when
 * path or bump changes, keeping the previous data meanwhile); a null path fetches
 * nothing. */
export function useFetch<T>(path: string | null, pollMs?: number, bump?: unknown): { data?: T; error?: unknown; loading: boolean } {
  const q = useQuery({
    queryKey: ['console', path, bump],
    queryFn: () => api<T>('GET', path as string),
    enabled: path !== null,
    refetchInterval: pollMs ?? false,
    placeholderData: keepPreviousData,
  });
  return { data: q.data, error: q.error ?? undefined, loading: path !== null && q.isPending };
}
