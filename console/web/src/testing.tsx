import { QueryClientProvider } from '@tanstack/react-query';
import type { ReactElement } from 'react';
import { newQueryClient } from './hooks';

/** withQueries wraps a component under test in a fresh query client, as main.tsx does. */
export function withQueries(ui: ReactElement): ReactElement {
  return <QueryClientProvider client={newQueryClient()}>{ui}</QueryClientProvider>;
}
