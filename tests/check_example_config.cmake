# Fails when config/haven.toml.example differs from `havend --print-example-config`.
execute_process(COMMAND ${HAVEND} --print-example-config OUTPUT_VARIABLE generated RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "havend --print-example-config failed")
endif()
file(READ ${EXAMPLE} committed)
if(NOT generated STREQUAL committed)
  message(FATAL_ERROR "config/haven.toml.example is stale: regenerate it with "
                      "`build/havend --print-example-config > config/haven.toml.example`")
endif()
