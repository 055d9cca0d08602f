// The DNS checking core: a resolver whose lookups return DNS failures as values, validators
// for DMARC, SPF and DKIM key records, and the comparison that decides whether two observations of a record
// differ in meaning. Scheduling, storage and alerting build on these functions.
export type {
  DnsLookups,
  DnsResolverOptions,
  LookupAnswerStatus,
  LookupFailure,
  LookupOutcome,
  LookupProblemStatus,
  LookupStatus,
  LookupSuccess,
  MxRecord,
} from './resolver.ts';
export { DnsResolver, canonicalDnsName, isLookupProblem, isMissing } from './resolver.ts';

export type { DmarcDialect, Finding, FindingSeverity } from './findings.ts';

export type {
  AppliedPolicy,
  DmarcEnforcement,
  DmarcEvaluation,
  DmarcPolicy,
  DmarcRecord,
  DmarcSelection,
  DmarcTagValue,
  DmarcUri,
  DmarcVerdict,
} from './dmarc-record.ts';
export {
  evaluateDmarcTxt,
  isDmarcRecordText,
  parseDmarcRecord,
  parseDmarcUri,
  selectDmarcRecord,
} from './dmarc-record.ts';
export { dialectName, dmarcVerdict, policyStrength } from './dmarc-verdict.ts';

export type {
  DmarcDiscovery,
  DmarcDiscoveryOptions,
  DmarcPolicySource,
  DmarcWalkStep,
  ReportDestinationCheck,
} from './dmarc-discovery.ts';
export {
  checkReportDestinations,
  discoverDmarcPolicy,
  discoverOrganizationalDomain,
  treeWalkTargets,
} from './dmarc-discovery.ts';

export type {
  SpfMechanism,
  SpfMechanismName,
  SpfModifier,
  SpfQualifier,
  SpfRecord,
  SpfResult,
  SpfSelection,
  SpfTerm,
} from './spf-record.ts';
export {
  canonicalSpfTerm,
  canonicalSpfText,
  isSpfRecordText,
  parseSpfRecord,
  qualifierResult,
  selectSpfRecord,
} from './spf-record.ts';

export type {
  SpfEvaluation,
  SpfEvaluationOptions,
  SpfFamilyResult,
  SpfFamilyVerdict,
  SpfNode,
  SpfNodeStatus,
} from './spf-evaluation.ts';
export { evaluateSpf } from './spf-evaluation.ts';

export type { DkimEvaluation, DkimKey, DkimKeyStatus } from './dkim-record.ts';
export {
  checkDkimKey,
  dkimKeyName,
  evaluateDkimTxt,
  parseDkimKey,
  parseDkimTagList,
} from './dkim-record.ts';

export type {
  ChangeDetail,
  ChangeKind,
  ChangeSeverity,
  DkimKeyFacts,
  DkimMeaning,
  DmarcMeaning,
  DmarcVerdictFacts,
  Observation,
  ObservationComparison,
  ObservedLookup,
  ObserveOptions,
  RecordKind,
  RecordMeaning,
  SpfMeaning,
} from './observation.ts';
export {
  buildDkimObservation,
  buildDkimObservationFromTxt,
  buildDmarcObservation,
  buildSpfObservation,
  compareObservations,
  observeDkim,
  observeDmarc,
  observeSpf,
} from './observation.ts';

export type { AddressFamily } from './ip-space.ts';
