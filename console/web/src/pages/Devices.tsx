import { Box, MenuItem, Paper, Table, TableBody, TableCell, TableContainer, TableHead, TableRow, TextField, Typography } from '@mui/material';
import { useState } from 'react';
import { EmptyState, ErrorAlert, NavLink, PhaseChip, StatusChip } from '../components/common';
import { age } from '../logic';
import { useStore } from '../store';

export function Devices() {
  const all = Object.values(useStore((s) => s.devices));
  const loaded = useStore((s) => s.loaded.Device);
  const error = useStore((s) => s.errors.Device);
  const [q, setQ] = useState('');
  const [phase, setPhase] = useState('');
  const [board, setBoard] = useState('');
  const boards = [...new Set(all.map((d) => d.spec.board))].sort();
  const needle = q.trim().toLowerCase();
  const shown = all.filter(
    (d) =>
      (!needle || `${d.metadata.namespace}/${d.metadata.name} ${d.status?.gateway ?? ''}`.toLowerCase().includes(needle)) &&
      (!phase || (d.status?.phase || 'Pending') === phase) &&
      (!board || d.spec.board === board),
  );
  return (
    <Box>
      <Typography variant="h5" gutterBottom>
        Devices
      </Typography>
      <ErrorAlert error={error} title="Cannot list devices" />
      <Box sx={{ display: 'flex', gap: 2, mb: 2, flexWrap: 'wrap' }}>
        <TextField size="small" label="Filter by name or gateway" value={q} onChange={(e) => setQ(e.target.value)} />
        <TextField size="small" select label="Phase" value={phase} onChange={(e) => setPhase(e.target.value)} sx={{ minWidth: 160 }}>
          <MenuItem value="">any</MenuItem>
          {['Pending', 'Enrolled', 'Connected', 'Disconnected'].map((p) => (
            <MenuItem key={p} value={p}>
              {p}
            </MenuItem>
          ))}
        </TextField>
        <TextField size="small" select label="Board" value={board} onChange={(e) => setBoard(e.target.value)} sx={{ minWidth: 200 }}>
          <MenuItem value="">any</MenuItem>
          {boards.map((b) => (
            <MenuItem key={b} value={b}>
              {b}
            </MenuItem>
          ))}
        </TextField>
        <Typography sx={{ alignSelf: 'center' }} color="text.secondary">
          {shown.length} of {all.length}
        </Typography>
      </Box>
      {loaded && !error && all.length === 0 ? (
        <EmptyState title="No devices">
          Run <code>make run</code>: it starts virtual devices (sim-0…) in namespace <code>default</code>. Or create a Device object
          with <code>kubectl apply</code> (see docs/crds.md) and start the board with its identity.
        </EmptyState>
      ) : (
        <TableContainer component={Paper} variant="outlined">
          <Table size="small" data-testid="devices-table">
            <TableHead>
              <TableRow>
                <TableCell>Name</TableCell>
                <TableCell>Board</TableCell>
                <TableCell>Phase</TableCell>
                <TableCell>Ready</TableCell>
                <TableCell>Gateway</TableCell>
                <TableCell>Apps</TableCell>
                <TableCell>Last seen</TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {shown.map((d) => (
                <TableRow key={`${d.metadata.namespace}/${d.metadata.name}`} hover>
                  <TableCell>
                    <NavLink to={`/devices/${d.metadata.namespace}/${d.metadata.name}`}>
                      {d.metadata.namespace}/{d.metadata.name}
                    </NavLink>
                  </TableCell>
                  <TableCell>{d.spec.board}</TableCell>
                  <TableCell>
                    <PhaseChip phase={d.status?.phase} />
                  </TableCell>
                  <TableCell>
                    <StatusChip conditions={d.status?.conditions} />
                  </TableCell>
                  <TableCell>{d.status?.gateway ?? '—'}</TableCell>
                  <TableCell>
                    {(d.status?.applications ?? []).filter((a) => a.state === 'Running').length} running /{' '}
                    {(d.status?.applications ?? []).length}
                  </TableCell>
                  <TableCell>{age(d.status?.lastSeen)}</TableCell>
                </TableRow>
              ))}
              {shown.length === 0 && all.length > 0 && (
                <TableRow>
                  <TableCell colSpan={7}>No device matches the filters: clear them to see all {all.length}.</TableCell>
                </TableRow>
              )}
            </TableBody>
          </Table>
        </TableContainer>
      )}
    </Box>
  );
}
