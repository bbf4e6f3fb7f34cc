import { Alert, AlertTitle, Box, Chip, Link, Paper, Table, TableBody, TableCell, TableHead, TableRow, Tooltip, Typography } from '@mui/material';
import type { ReactNode } from 'react';
import { ApiError } from '../api';
import type { Status, Tone } from '../logic';
import { age, phaseTone, statusFromConditions } from '../logic';
import type { Condition, KubeEvent } from '../types';

const chipColor: Record<Tone, 'success' | 'error' | 'warning' | 'info' | 'default'> = {
  success: 'success',
  error: 'error',
  warning: 'warning',
  info: 'info',
  default: 'default',
};

/** StatusChip shows an object's Ready status; the tooltip carries reason and message. */
export function StatusChip({ conditions, generation, type = 'Ready' }: { conditions?: Condition[]; generation?: number; type?: string }) {
  const s: Status = statusFromConditions(conditions, generation, type);
  const tip = [s.reason, s.message].filter(Boolean).join(': ');
  return (
    <Tooltip title={tip}>
      <Chip size="small" label={s.label} color={chipColor[s.tone]} variant={s.tone === 'default' ? 'outlined' : 'filled'} data-testid="status-chip" />
    </Tooltip>
  );
}

export function PhaseChip({ phase }: { phase?: string }) {
  return <Chip size="small" variant="outlined" label={phase || 'Pending'} color={chipColor[phaseTone(phase)]} data-testid="phase-chip" />;
}

/** EmptyState explains what to do when there is nothing to show. */
export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <Paper variant="outlined" sx={{ p: 4, textAlign: 'center', color: 'text.secondary' }}>
      <Typography variant="h6" gutterBottom>
        {title}
      </Typography>
      <Box sx={{ maxWidth: 640, mx: 'auto' }}>{children}</Box>
    </Paper>
  );
}

/** hint says what to do about a failed call. */
export function hint(e: ApiError): string {
  switch (e.status) {
    case 0:
      return 'Check that the console is running, then retry.';
    case 401:
      return 'Your token was refused: sign in again with a valid token.';
    case 403:
      return 'Your user lacks the rights for this: ask an administrator for a Role or RoleBinding, or pick a namespace you may use.';
    case 404:
      return 'It does not exist (any more): it may have been deleted.';
    case 409:
      return 'Someone changed or created it meanwhile: reload and try again, or choose another name.';
    case 422:
      return 'The apiserver refused the object: fix the field it names.';
    case 502:
      return 'A component behind the console did not answer: check that it runs.';
    default:
      return '';
  }
}

export function ErrorAlert({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const e = error instanceof ApiError ? error : new ApiError(0, String(error));
  return (
    <Alert severity="error" sx={{ my: 1 }} data-testid="error-alert">
      <AlertTitle>{title ? `${title}: ${e.message}` : e.message}</AlertTitle>
      {e.detail && <Box sx={{ fontFamily: 'monospace', fontSize: 13, whiteSpace: 'pre-wrap' }}>{e.detail}</Box>}
      {hint(e) && <Box sx={{ mt: 0.5 }}>{hint(e)}</Box>}
    </Alert>
  );
}

export function Section({ title, children, action }: { title: string; children: ReactNode; action?: ReactNode }) {
  return (
    <Paper variant="outlined" sx={{ p: 2, mb: 2 }}>
      <Box sx={{ display: 'flex', alignItems: 'center', mb: 1 }}>
        <Typography variant="subtitle1" sx={{ fontWeight: 600, flex: 1 }}>
          {title}
        </Typography>
        {action}
      </Box>
      {children}
    </Paper>
  );
}

export function Field({ label, children }: { label: string; children: ReactNode }) {
  return (
    <Box sx={{ display: 'flex', py: 0.5, borderBottom: '1px solid', borderColor: 'divider' }}>
      <Box sx={{ width: 200, color: 'text.secondary', flexShrink: 0 }}>{label}</Box>
      <Box sx={{ minWidth: 0, overflowWrap: 'anywhere' }}>{children}</Box>
    </Box>
  );
}

export function NavLink({ to, children }: { to: string; children: ReactNode }) {
  return (
    <Link href={`#${to}`} underline="hover">
      {children}
    </Link>
  );
}

function eventTime(e: KubeEvent): string | undefined {
  return e.lastTimestamp || e.eventTime || e.firstTimestamp;
}

export function EventsTable({ events, showObject }: { events: KubeEvent[]; showObject?: boolean }) {
  if (events.length === 0) return <Typography color="text.secondary">No Kubernetes Events (they expire after an hour).</Typography>;
  return (
    <Table size="small">
      <TableHead>
        <TableRow>
          <TableCell>Age</TableCell>
          <TableCell>Type</TableCell>
          <TableCell>Reason</TableCell>
          {showObject && <TableCell>Object</TableCell>}
          <TableCell>Message</TableCell>
        </TableRow>
      </TableHead>
      <TableBody>
        {events.map((e) => (
          <TableRow key={e.metadata.uid ?? e.metadata.name}>
            <TableCell>{age(eventTime(e))}</TableCell>
            <TableCell>
              <Chip size="small" label={e.type ?? 'Normal'} color={e.type === 'Warning' ? 'warning' : 'default'} variant="outlined" />
            </TableCell>
            <TableCell>{e.reason}</TableCell>
            {showObject && (
              <TableCell>
                {e.involvedObject.kind} {e.involvedObject.namespace}/{e.involvedObject.name}
              </TableCell>
            )}
            <TableCell sx={{ fontFamily: 'monospace', fontSize: 12, whiteSpace: 'pre-wrap' }}>
              {e.message}
              {e.count && e.count > 1 ? ` (×${e.count})` : ''}
            </TableCell>
          </TableRow>
        ))}
      </TableBody>
    </Table>
  );
}

export function ConditionsTable({ conditions }: { conditions?: Condition[] }) {
  if (!conditions?.length) return <Typography color="text.secondary">No conditions yet: the operator has not reconciled this object.</Typography>;
  return (
    <Table size="small">
      <TableHead>
        <TableRow>
          <TableCell>Type</TableCell>
          <TableCell>Status</TableCell>
          <TableCell>Reason</TableCell>
          <TableCell>Message</TableCell>
          <TableCell>Since</TableCell>
        </TableRow>
      </TableHead>
      <TableBody>
        {conditions.map((c) => (
          <TableRow key={c.type}>
            <TableCell>{c.type}</TableCell>
            <TableCell>{c.status}</TableCell>
            <TableCell>{c.reason}</TableCell>
            <TableCell sx={{ fontFamily: 'monospace', fontSize: 12, whiteSpace: 'pre-wrap' }}>{c.message}</TableCell>
            <TableCell>{age(c.lastTransitionTime)}</TableCell>
          </TableRow>
        ))}
      </TableBody>
    </Table>
  );
}
