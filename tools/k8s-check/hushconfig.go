package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// configKey is the file name under which the kustomization's ConfigMap carries Hush's
// configuration.
const configKey = "hush.toml"

// defaultEncryptionKeyEnv is [intake] encryption_key_env when hush.toml leaves it out.
const defaultEncryptionKeyEnv = "HUSH_ENCRYPTION_KEY"

// hushConfig is the part of hush.toml that names environment variables holding secrets.
type hushConfig struct {
	Kafka struct {
		SecretProperties map[string]string `toml:"secret_properties"`
	} `toml:"kafka"`
	SchemaRegistry struct {
		PasswordEnv    string `toml:"password_env"`
		BearerTokenEnv string `toml:"bearer_token_env"`
	} `toml:"schema_registry"`
	Intake struct {
		EncryptionKeyEnv string `toml:"encryption_key_env"`
	} `toml:"intake"`
	Recipients []recipient `toml:"recipients"`
}

// recipient is one [[recipients]] entry: credentials maps a name to the variable holding it.
type recipient struct {
	ID          string            `toml:"id"`
	Kind        string            `toml:"kind"`
	Credentials map[string]string `toml:"credentials"`
}

// CheckSecretMapping reads hush.toml from the ConfigMap that carries it and checks that every
// Hush container is given, in its env, each variable its configuration names: the Kafka and
// registry secrets in every one, the encryption key in intake, a recipient's credentials in
// that recipient's suppressor, and each webhook recipient's signing secret in the auditor (it
// checks their callbacks). It returns a one-line summary of what it checked.
func CheckSecretMapping(objects []Object) (string, []error) {
	var config hushConfig
	found := false
	for _, object := range objects {
		configMap, isConfigMap := object.Typed.(*corev1.ConfigMap)
		if !isConfigMap {
			continue
		}
		text, holds := configMap.Data[configKey]
		if !holds {
			continue
		}
		if found {
			return "", []error{fmt.Errorf("%s: a second ConfigMap carries %s", object, configKey)}
		}
		if _, err := toml.Decode(text, &config); err != nil {
			return "", []error{fmt.Errorf("%s: %s: %w", object, configKey, err)}
		}
		found = true
	}
	if !found {
		return "no ConfigMap carries " + configKey + ", secret mapping not checked", nil
	}
	platform := slices.Sorted(maps.Values(config.Kafka.SecretProperties))
	for _, name := range []string{config.SchemaRegistry.PasswordEnv, config.SchemaRegistry.BearerTokenEnv} {
		if name != "" {
			platform = append(platform, name)
		}
	}
	encryptionKey := config.Intake.EncryptionKeyEnv
	if encryptionKey == "" {
		encryptionKey = defaultEncryptionKeyEnv
	}
	var errs []error
	containers := 0
	for _, object := range objects {
		for _, container := range hushContainers(object) {
			containers++
			need := slices.Clone(platform)
			program, connector := commandOf(container)
			switch program {
			case "hush-intake":
				need = append(need, encryptionKey)
			case "hush-auditor":
				for _, webhook := range config.Recipients {
					if webhook.Kind == "webhook" && webhook.Credentials["signing_secret"] != "" {
						need = append(need, webhook.Credentials["signing_secret"])
					}
				}
			case "hush-suppressor":
				index := slices.IndexFunc(config.Recipients, func(r recipient) bool { return r.ID == connector })
				if index < 0 {
					errs = append(errs, fmt.Errorf("%s: containers[%s] runs --connector %q, which is not a recipient id in %s", object, container.Name, connector, configKey))
					continue
				}
				need = append(need, slices.Sorted(maps.Values(config.Recipients[index].Credentials))...)
			}
			for _, variable := range need {
				if !slices.ContainsFunc(container.Env, func(env corev1.EnvVar) bool { return env.Name == variable }) {
					errs = append(errs, fmt.Errorf("%s: containers[%s].env lacks %s, which %s names (map it with valueFrom.secretKeyRef)", object, container.Name, variable, configKey))
				}
			}
		}
	}
	return fmt.Sprintf("%s: the secrets it names are mapped into the %d Hush containers that read them", configKey, containers), errs
}

// hushContainers returns the containers of a workload that run a Hush binary.
func hushContainers(object Object) []corev1.Container {
	var pod *corev1.PodSpec
	switch typed := object.Typed.(type) {
	case *appsv1.Deployment:
		pod = &typed.Spec.Template.Spec
	case *batchv1.Job:
		pod = &typed.Spec.Template.Spec
	case *batchv1.CronJob:
		pod = &typed.Spec.JobTemplate.Spec.Template.Spec
	default:
		return nil
	}
	var hush []corev1.Container
	for _, container := range pod.Containers {
		if program, _ := commandOf(container); program == "hush" || strings.HasPrefix(program, "hush-") {
			hush = append(hush, container)
		}
	}
	return hush
}

// commandOf returns the program a container runs and the value of its --connector flag.
func commandOf(container corev1.Container) (program, connector string) {
	command := append(slices.Clone(container.Command), container.Args...)
	if len(command) == 0 {
		return "", ""
	}
	for i, arg := range command {
		if arg == "--connector" && i+1 < len(command) {
			connector = command[i+1]
		} else if value, cut := strings.CutPrefix(arg, "--connector="); cut {
			connector = value
		}
	}
	return command[0], connector
}
