package v1alpha1

// Condition types. Every kind has Ready, the summary a user looks at first.
const (
	// ConditionReady is True when the object does what its spec asks.
	ConditionReady = "Ready"

	// ConditionBuilt is True when the Application's source compiled to a module.
	ConditionBuilt = "Built"
	// ConditionValidated is True when the module passed validation for every target board.
	ConditionValidated = "Validated"
	// ConditionRolledOut is True when every target device runs the module.
	ConditionRolledOut = "RolledOut"

	// ConditionEnrolled is True when the Device has a signed certificate.
	ConditionEnrolled = "Enrolled"
	// ConditionConnected is True while the Device has a live gateway session.
	ConditionConnected = "Connected"

	// ConditionAvailable is True when a Gateway's pods are serving.
	ConditionAvailable = "Available"
)

// Condition reasons, CamelCase as Kubernetes requires. A reason names what happened; the
// condition message says what to do about it.
const (
	ReasonPending          = "Pending"
	ReasonBuilding         = "Building"
	ReasonBuildSucceeded   = "BuildSucceeded"
	ReasonBuildFailed      = "BuildFailed"
	ReasonSourceNotFound   = "SourceNotFound"
	ReasonValidating       = "Validating"
	ReasonValidationPassed = "ValidationPassed"
	ReasonModuleRejected   = "ModuleRejected"
	ReasonNoTargets        = "NoTargets"
	ReasonRollingOut       = "RollingOut"
	ReasonRolloutPaused    = "RolloutPaused"
	ReasonRolloutSucceeded = "RolloutSucceeded"
	ReasonRolloutFailed    = "RolloutFailed"
	ReasonRolledBack       = "RolledBack"
	ReasonRolloutAborted   = "RolloutAborted"
	ReasonPipelineError    = "PipelineError"
	ReasonRunningSteps     = "RunningSteps"
	ReasonStepFailed       = "StepFailed"

	// Rollout policy (spec.rollout: rate, schedule, maintenance, approval).
	ReasonWaitingForApproval       = "WaitingForApproval"
	ReasonWaitingForSchedule       = "WaitingForSchedule"
	ReasonOutsideMaintenanceWindow = "OutsideMaintenanceWindow"
	ReasonRateLimited              = "RateLimited"
	ReasonScheduleEnded            = "ScheduleEnded"
	ReasonCannotFinish             = "CannotFinish"

	ReasonAwaitingCSR           = "AwaitingCSR"
	ReasonCertificateIssued     = "CertificateIssued"
	ReasonKeyRevoked            = "KeyRevoked"
	ReasonReenrollmentRequested = "ReenrollmentRequested"
	ReasonSessionOpen           = "SessionOpen"
	ReasonSessionClosed         = "SessionClosed"
	ReasonNeverConnected        = "NeverConnected"
	ReasonDisabled              = "Disabled"
	ReasonReenabled             = "Reenabled"

	ReasonDeploymentReady    = "DeploymentReady"
	ReasonDeploymentNotReady = "DeploymentNotReady"
)
