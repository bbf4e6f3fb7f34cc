import { Box, Paper, Table, TableBody, TableCell, TableContainer, TableHead, TableRow, Typography } from '@mui/material';
import { EmptyState, ErrorAlert, StatusChip } from '../components/common';
import { age } from '../logic';
import { useStore } from '../store';

export function Gateways() {
  const gws = Object.values(useStore((s) => s.gateways));
  const loaded = useStore((s) => s.loaded.Gateway);
  const error = useStore((s) => s.errors.Gateway);
  return (
    <Box>
      <Typography variant="h5" gutterBottom>
        Gateways
      </Typography>
      <ErrorAlert error={error} title="Cannot list gateways" />
      {loaded && !error && gws.length === 0 ? (
        <EmptyState title="No gateways">
          Devices connect to a gateway. <code>make run</code> creates <code>wasmbed-system/gateway</code>; in a cluster create a Gateway
          object (docs/crds.md) and the operator deploys it. You may also lack the right to list gateways in this namespace.
        </EmptyState>
      ) : (
        <TableContainer component={Paper} variant="outlined">
          <Table size="small">
            <TableHead>
              <TableRow>
                <TableCell>Name</TableCell>
                <TableCell>Endpoint</TableCell>
                <TableCell>Devices</TableCell>
                <TableCell>Replicas</TableCell>
                <TableCell>Ready</TableCell>
                <TableCell>Age</TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {gws.map((g) => (
                <TableRow key={`${g.metadata.namespace}/${g.metadata.name}`}>
                  <TableCell>
                    {g.metadata.namespace}/{g.metadata.name}
                  </TableCell>
                  <TableCell sx={{ fontFamily: 'monospace' }}>{g.status?.endpoint ?? '—'}</TableCell>
                  <TableCell>
                    {g.status?.connectedDevices ?? 0}
                    {g.spec?.maxDevices ? ` / ${g.spec.maxDevices}` : ''}
                  </TableCell>
                  <TableCell>{g.spec?.replicas ?? 1}</TableCell>
                  <TableCell>
                    <StatusChip conditions={g.status?.conditions} generation={g.metadata.generation} />
                  </TableCell>
                  <TableCell>{age(g.metadata.creationTimestamp)}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </TableContainer>
      )}
    </Box>
  );
}
