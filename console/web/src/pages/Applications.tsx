import { Box, Button, LinearProgress, Paper, Table, TableBody, TableCell, TableContainer, TableHead, TableRow, Typography } from '@mui/material';
import { EmptyState, ErrorAlert, NavLink, PhaseChip, StatusChip } from '../components/common';
import { age, rolloutProgress, shortDigest } from '../logic';
import { useStore } from '../store';
import type { Application } from '../types';

export function sourceLabel(a: Application): string {
  const s = a.spec.source;
  if (s.inline) return s.inline.language;
  if (s.configMap) return `${s.configMap.language} (ConfigMap ${s.configMap.name})`;
  if (s.module?.configMap) return 'uploaded .wasm';
  if (s.module) return 'prebuilt module';
  return '—';
}

export function ProgressCell({ app }: { app: Application }) {
  const p = rolloutProgress(app);
  return (
    <Box sx={{ minWidth: 160 }}>
      <LinearProgress variant="determinate" value={p.percent} color={p.failed > 0 ? 'warning' : p.done ? 'success' : 'primary'} />
      <Typography variant="caption" data-testid="progress-text">
        {app.status?.rollout?.progress ?? '0/0'}
        {p.failed > 0 ? `, ${p.failed} failed` : ''}
        {p.step ? ` · ${p.step}` : ''}
      </Typography>
    </Box>
  );
}

export function Applications() {
  const apps = Object.values(useStore((s) => s.applications));
  const loaded = useStore((s) => s.loaded.Application);
  const error = useStore((s) => s.errors.Application);
  return (
    <Box>
      <Box sx={{ display: 'flex', alignItems: 'center', mb: 2 }}>
        <Typography variant="h5" sx={{ flex: 1 }}>
          Applications
        </Typography>
        <Button variant="contained" href="#/applications/new" data-testid="new-app">
          New application
        </Button>
      </Box>
      <ErrorAlert error={error} title="Cannot list applications" />
      {loaded && !error && apps.length === 0 ? (
        <EmptyState title="No applications">
          Create one with <NavLink to="/applications/new">New application</NavLink>: write C, AssemblyScript, WAT or Rust (a starter
          template is filled in), or upload a .wasm module. It is built, validated for every target board and rolled out to the
          devices its selector matches.
        </EmptyState>
      ) : (
        <TableContainer component={Paper} variant="outlined">
          <Table size="small" data-testid="apps-table">
            <TableHead>
              <TableRow>
                <TableCell>Name</TableCell>
                <TableCell>Source</TableCell>
                <TableCell>Phase</TableCell>
                <TableCell>Ready</TableCell>
                <TableCell>Progress</TableCell>
                <TableCell>Digest</TableCell>
                <TableCell>Age</TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {apps.map((a) => (
                <TableRow key={`${a.metadata.namespace}/${a.metadata.name}`} hover>
                  <TableCell>
                    <NavLink to={`/applications/${a.metadata.namespace}/${a.metadata.name}`}>
                      {a.metadata.namespace}/{a.metadata.name}
                    </NavLink>
                  </TableCell>
                  <TableCell>{sourceLabel(a)}</TableCell>
                  <TableCell>
                    <PhaseChip phase={a.status?.phase} />
                  </TableCell>
                  <TableCell>
                    <StatusChip conditions={a.status?.conditions} generation={a.metadata.generation} />
                  </TableCell>
                  <TableCell>
                    <ProgressCell app={a} />
                  </TableCell>
                  <TableCell sx={{ fontFamily: 'monospace' }}>{shortDigest(a.status?.build?.digest)}</TableCell>
                  <TableCell>{age(a.metadata.creationTimestamp)}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </TableContainer>
      )}
    </Box>
  );
}
