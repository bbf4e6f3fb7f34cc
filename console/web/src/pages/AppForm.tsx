import { Alert, Box, Button, LinearProgress, MenuItem, Paper, TextField, ToggleButton, ToggleButtonGroup, Typography } from '@mui/material';
import { useState } from 'react';
import { api, ApiError, objPath } from '../api';
import { ErrorAlert } from '../components/common';
import type { AppForm as Form, FormErrors } from '../logic';
import { languages, parseApprovalSteps, parsePairs, parsePolicy, policyKeys, policyText, validateAppForm } from '../logic';
import { upsert, useStore } from '../store';
import { templates } from '../templates';
import type { Application, Language, RolloutSpec } from '../types';

const languageNames: Record<string, string> = { c: 'C', assemblyscript: 'AssemblyScript', wat: 'WebAssembly text (WAT)', rust: 'Rust' };

function toForm(a?: Application): Form {
  const inline = a?.spec.source.inline;
  const r = a?.spec.rollout;
  return {
    name: a?.metadata.name ?? '',
    mode: a && !inline ? 'upload' : 'source',
    language: inline?.language ?? 'c',
    code: inline?.code ?? templates.c,
    selector: Object.entries(a?.spec.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(', '),
    config: Object.entries(a?.spec.config ?? {}).map(([k, v]) => `${k}=${v}`).join('\n'),
    strategy: r?.strategy ?? 'AllAtOnce',
    canarySteps: (r?.steps ?? []).map((s) => s.percent).join(', '),
    approvalSteps: (r?.steps ?? []).flatMap((s, i) => (s.requireApproval ? [i + 1] : [])).join(', '),
    policy: policyText(r),
  };
}

function base64(buf: ArrayBuffer): string {
  let s = '';
  const b = new Uint8Array(buf);
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

/** AppForm creates an Application (no `existing`) or replaces an existing one's spec. */
export function AppForm({ existing }: { existing?: Application }) {
  const nsFilter = useStore((s) => s.namespace);
  const [namespace, setNamespace] = useState(existing?.metadata.namespace ?? (nsFilter || 'default'));
  const [f, setF] = useState<Form>(() => toForm(existing));
  const [file, setFile] = useState<File>();
  const [touched, setTouched] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const errors: FormErrors = touched ? validateAppForm(f) : {};
  const set = (patch: Partial<Form>) => setF((x) => ({ ...x, ...patch }));
  // The language picker replaces untouched starter code with the new language's template.
  const pickLanguage = (lang: string) => {
    const isTemplate = Object.values(templates).includes(f.code) || !f.code.trim();
    set({ language: lang, ...(isTemplate ? { code: templates[lang as Language] } : {}) });
  };
  const chooseFile = async (fl: File | undefined) => {
    setFile(fl);
    if (!fl) return set({ wasm: undefined });
    const head = new Uint8Array(await fl.slice(0, 4).arrayBuffer());
    set({ wasm: { size: fl.size, head } });
  };
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setTouched(true);
    const errs = validateAppForm(f);
    if (Object.keys(errs).length > 0) return;
    setBusy(true);
    setError(undefined);
    try {
      // The rollout: what the form edits, over what it does not (paused, abort...).
      const base: RolloutSpec = { ...existing?.spec.rollout };
      for (const k of policyKeys) delete base[k];
      const percents = f.canarySteps.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
      const approvals = parseApprovalSteps(f.approvalSteps, percents.length).steps;
      const rollout: RolloutSpec = { ...base, ...parsePolicy(f.policy).policy };
      if (f.strategy === 'Canary') {
        rollout.strategy = 'Canary';
        // A step keeps its pause when its position stays.
        rollout.steps = percents.map((percent, i) => {
          const step = { ...existing?.spec.rollout?.steps?.[i], percent };
          delete step.requireApproval;
          return approvals.includes(i + 1) ? { ...step, requireApproval: true } : step;
        });
      } else {
        rollout.strategy = 'AllAtOnce';
        delete rollout.steps;
      }
      const body: Record<string, unknown> = {
        name: f.name,
        selector: { matchLabels: parsePairs(f.selector, /,/).pairs },
        config: parsePairs(f.config, /\n/).pairs,
        rollout,
      };
      if (f.mode === 'source') body.source = { language: f.language, code: f.code };
      else body.module = { wasm: base64(await file!.arrayBuffer()) };
      const app = existing
        ? await api<Application>('PUT', objPath('applications', namespace, f.name), body)
        : await api<Application>('POST', `/api/v1/namespaces/${encodeURIComponent(namespace)}/applications`, body);
      upsert('Application', 'MODIFIED', app);
      location.hash = `#/applications/${app.metadata.namespace}/${app.metadata.name}`;
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const apiFieldErrors = error instanceof ApiError ? error.causes : [];
  return (
    <Paper component="form" onSubmit={submit} noValidate variant="outlined" sx={{ p: 3 }}>
      <Typography variant="h5" gutterBottom>
        {existing ? `Edit ${existing.metadata.namespace}/${existing.metadata.name}` : 'New application'}
      </Typography>
      <Box sx={{ display: 'flex', gap: 2, mb: 2, flexWrap: 'wrap' }}>
        <TextField label="Namespace" value={namespace} onChange={(e) => setNamespace(e.target.value)} disabled={!!existing} size="small" />
        <TextField
          label="Name"
          value={f.name}
          onChange={(e) => set({ name: e.target.value })}
          disabled={!!existing}
          size="small"
          error={!!errors.name}
          helperText={errors.name ?? 'a DNS label, e.g. blink'}
          inputProps={{ 'data-testid': 'app-name' }}
        />
      </Box>
      <ToggleButtonGroup exclusive size="small" value={f.mode} onChange={(_, m) => m && set({ mode: m })} sx={{ mb: 2 }}>
        <ToggleButton value="source" data-testid="mode-source">
          Source code
        </ToggleButton>
        <ToggleButton value="upload" data-testid="mode-upload">
          Upload .wasm
        </ToggleButton>
      </ToggleButtonGroup>
      {f.mode === 'source' ? (
        <Box>
          <TextField
            select
            size="small"
            label="Language"
            value={f.language}
            onChange={(e) => pickLanguage(e.target.value)}
            sx={{ minWidth: 240, mb: 1 }}
            error={!!errors.language}
            helperText={errors.language ?? 'changing it loads that language\'s starter template'}
            SelectProps={{ inputProps: { 'data-testid': 'language' } }}
          >
            {languages.map((l) => (
              <MenuItem key={l} value={l} data-testid={`language-${l}`}>
                {languageNames[l]}
              </MenuItem>
            ))}
          </TextField>
          <TextField
            label="Source"
            multiline
            fullWidth
            minRows={14}
            maxRows={30}
            value={f.code}
            onChange={(e) => set({ code: e.target.value })}
            error={!!errors.code}
            helperText={errors.code ?? 'built by the compile function; compiler diagnostics appear on the application page'}
            inputProps={{ spellCheck: false, 'data-testid': 'code', style: { fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace', fontSize: 13 } }}
          />
        </Box>
      ) : (
        <Box sx={{ mb: 1 }}>
          <Button variant="outlined" component="label">
            Choose .wasm file
            <input hidden type="file" accept=".wasm,application/wasm" onChange={(e) => void chooseFile(e.target.files?.[0])} data-testid="wasm-file" />
          </Button>
          <Typography component="span" sx={{ ml: 2 }}>
            {file ? `${file.name} (${file.size} bytes)` : 'no file chosen'}
          </Typography>
          {errors.wasm && <Alert severity="error" sx={{ mt: 1 }}>{errors.wasm}</Alert>}
          <Typography variant="caption" display="block" color="text.secondary" sx={{ mt: 1 }}>
            Stored in ConfigMap &lt;name&gt;-module (binaryData, at most 1000 KiB) with its sha256 digest in the Application.
          </Typography>
        </Box>
      )}
      <Box sx={{ display: 'grid', gridTemplateColumns: { md: '1fr 1fr', xs: '1fr' }, gap: 2, mt: 2 }}>
        <TextField
          size="small"
          label="Device selector"
          value={f.selector}
          onChange={(e) => set({ selector: e.target.value })}
          error={!!errors.selector}
          helperText={errors.selector ?? 'labels, e.g. tier=canary, board=virtual; empty: every device of the namespace'}
        />
        <TextField
          size="small"
          label="Config"
          multiline
          minRows={2}
          value={f.config}
          onChange={(e) => set({ config: e.target.value })}
          error={!!errors.config}
          helperText={errors.config ?? 'one key=value per line, read with config_get'}
        />
        <TextField select size="small" label="Rollout" value={f.strategy} onChange={(e) => set({ strategy: e.target.value as Form['strategy'] })}>
          <MenuItem value="AllAtOnce">All at once</MenuItem>
          <MenuItem value="Canary">Canary</MenuItem>
        </TextField>
        {f.strategy === 'Canary' && (
          <TextField
            size="small"
            label="Canary steps (%)"
            value={f.canarySteps}
            onChange={(e) => set({ canarySteps: e.target.value })}
            error={!!errors.canarySteps}
            helperText={errors.canarySteps ?? 'cumulative percentages, e.g. 10, 50, 100'}
          />
        )}
        {f.strategy === 'Canary' && (
          <TextField
            size="small"
            label="Steps that wait for approval"
            value={f.approvalSteps}
            onChange={(e) => set({ approvalSteps: e.target.value })}
            error={!!errors.approvalSteps}
            helperText={errors.approvalSteps ?? 'step numbers, e.g. 2: the step starts once someone presses Approve'}
            inputProps={{ 'data-testid': 'approval-steps' }}
          />
        )}
      </Box>
      <TextField
        label="Rollout policy (JSON)"
        multiline
        fullWidth
        minRows={3}
        maxRows={20}
        sx={{ mt: 2 }}
        value={f.policy}
        onChange={(e) => set({ policy: e.target.value })}
        error={!!errors.policy}
        placeholder={'{"rate": {"devicesPerMinute": 20}, "deviceTimeout": "10m",\n "maintenance": {"timeZone": "Europe/Berlin", "windows": [{"start": "22:00", "duration": "4h"}]}}'}
        helperText={errors.policy ?? `optional: ${policyKeys.join(', ')}, as in docs/crds.md; the apiserver checks the values`}
        inputProps={{ spellCheck: false, 'data-testid': 'rollout-policy-json', style: { fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace', fontSize: 13 } }}
      />
      {apiFieldErrors.length > 0 && (
        <Alert severity="warning" sx={{ mt: 2 }}>
          {apiFieldErrors.map((c) => (
            <div key={c.field + c.message}>
              <b>{c.field}</b>: {c.message}
            </div>
          ))}
        </Alert>
      )}
      <ErrorAlert error={error} title={existing ? 'Update refused' : 'Create refused'} />
      {busy && <LinearProgress sx={{ mt: 2 }} />}
      <Box sx={{ mt: 2, display: 'flex', gap: 1 }}>
        <Button type="submit" variant="contained" disabled={busy} data-testid="submit-app">
          {existing ? 'Save and roll out' : 'Create'}
        </Button>
        <Button href={existing ? `#/applications/${existing.metadata.namespace}/${existing.metadata.name}` : '#/applications'}>Cancel</Button>
      </Box>
    </Paper>
  );
}
