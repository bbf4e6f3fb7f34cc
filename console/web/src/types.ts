// The Wasmbed objects as the console API returns them (api/v1alpha1).

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

export interface ObjectMeta {
  name: string;
  namespace: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** Where a deployment failed (a device's report), or why a rollout counts it failed. */
export type FailureType = 'transfer' | 'start' | 'trap' | 'timeout';

export interface DeviceApplication {
  name: string;
  digest?: string;
  state: string;
  message?: string;
  failure?: FailureType;
}

export interface Device {
  metadata: ObjectMeta;
  spec: { board: string; gateway?: string; disabled?: boolean };
  status?: {
    phase?: string;
    gateway?: string;
    lastSeen?: string;
    firmwareVersion?: string;
    capabilities?: { ramBytes?: number; flashBytes?: number; maxModuleBytes?: number; abiVersion?: number };
    certificateNotAfter?: string;
    applications?: DeviceApplication[];
    conditions?: Condition[];
  };
}

export type Language = 'c' | 'assemblyscript' | 'wat' | 'rust';

export interface CanaryStep {
  percent: number;
  pause?: string;
  requireApproval?: boolean;
}

export interface RolloutSpec {
  strategy?: 'AllAtOnce' | 'Canary';
  steps?: CanaryStep[];
  maxFailures?: number | string;
  autoRollback?: boolean;
  paused?: boolean;
  abort?: boolean;
  rate?: {
    devicesPerMinute: number;
    growth?: { factor: string; afterSucceeded?: number; afterStarted?: number; maxDevicesPerMinute?: number };
  };
  abortCriteria?: { failureType: FailureType | 'any'; thresholdPercent: number; minFinished?: number }[];
  retries?: { failureType: FailureType | 'any'; attempts: number; backoff?: string }[];
  deviceTimeout?: string;
  schedule?: { notBefore?: string; endBy?: string; endBehavior?: 'Cancel' | 'Rollback' | 'Continue' };
  maintenance?: {
    timeZone?: string;
    windows: { days?: ('Mon' | 'Tue' | 'Wed' | 'Thu' | 'Fri' | 'Sat' | 'Sun')[]; start: string; duration: string }[];
  };
}

/** A device the rollout policy started that has not succeeded yet. */
export interface RolloutDevice {
  name: string;
  startedAt: string;
  attempts: number;
  failure?: FailureType;
  retryAt?: string;
  final?: boolean;
  message?: string;
}

export interface RolloutStatus {
  digest: string;
  step: number;
  steps: number;
  targeted: number;
  dispatched: number;
  succeeded: number;
  failed: number;
  progress: string;
  pausedUntil?: string;
  rolledBack?: boolean;
  firstFailure?: string;
  waitingFor?: string;
  nextActionAt?: string;
  approvedStep?: number;
  started?: number;
  retries?: number;
  failuresByType?: Partial<Record<FailureType, number>>;
  rate?: { devicesPerMinute: number; nextStartAt?: string };
  overdue?: boolean;
  devices?: RolloutDevice[];
}

export interface Application {
  metadata: ObjectMeta;
  spec: {
    source: {
      inline?: { language: Language; code: string };
      configMap?: { language: Language; name: string; key: string };
      module?: { oci?: string; url?: string; configMap?: { name: string; key: string }; digest?: string };
    };
    selector?: { matchLabels?: Record<string, string> };
    config?: Record<string, string>;
    rollout?: RolloutSpec;
  };
  status?: {
    observedGeneration?: number;
    phase?: string;
    build?: { digest: string; size: number; toolchain?: string; logTail?: string };
    validation?: {
      digest: string;
      passed: boolean;
      reasons?: string[];
      boards?: { board: string; fits: boolean; memoryBytes: number; message?: string }[];
    };
    rollout?: RolloutStatus;
    previousGoodDigest?: string;
    conditions?: Condition[];
  };
}

export interface Gateway {
  metadata: ObjectMeta;
  spec: { replicas?: number; port?: number; maxDevices?: number; serviceType?: string };
  status?: { endpoint?: string; connectedDevices?: number; conditions?: Condition[] };
}

export interface KubeEvent {
  metadata: { name: string; namespace: string; uid?: string };
  involvedObject: { kind: string; name: string; namespace: string };
  reason?: string;
  message?: string;
  type?: string;
  count?: number;
  lastTimestamp?: string;
  eventTime?: string;
  firstTimestamp?: string;
  metadataCreation?: string;
}

export interface CloudEvent {
  id: string;
  type: string;
  source: string;
  subject?: string;
  time: string;
  namespace: string;
  data?: unknown;
}

export interface LogLine {
  time: string;
  level: string;
  app?: string;
  message: string;
}

export interface DeviceLog {
  device: string;
  gateway?: string;
  connected: boolean;
  lines: LogLine[];
  note?: string;
}

export type Kind = 'Device' | 'Application' | 'Gateway';
